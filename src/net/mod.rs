//! Transport: TCP connects, TLS, STARTTLS upgrades and rawlogs. Knows no protocol.
