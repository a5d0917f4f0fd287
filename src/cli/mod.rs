//! The command line: the legacy `key=value` form of ImapTest plus subcommands.
