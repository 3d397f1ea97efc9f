//! tilc-ptx
