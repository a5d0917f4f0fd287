//! User names: `user=` templates and `userfile=` lists.
