//! Message sources for APPEND and LMTP, and the test mbox generator.
