//! `tilc-syntax`: the .tl front end (work in progress).
