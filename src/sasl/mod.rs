//! Client SASL mechanisms.
