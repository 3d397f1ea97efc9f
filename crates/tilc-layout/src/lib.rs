//! `tilc-layout`: the layout algebra (work in progress).
