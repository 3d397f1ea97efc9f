//! `tilc-vm`: the block-level VM (work in progress).
