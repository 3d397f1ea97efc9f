//! `tilc-dtype`: element types of any width (work in progress).
