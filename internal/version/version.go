// Package version holds webswarm's version: the one place `tracker --version`,
// `seedctl --version`, the tracker's stats page and seedctl's user agent take it from.
// CHANGELOG.md has an entry for each version.
package version

// Version is webswarm's release version (semantic versioning).
const Version = "0.1.0"
