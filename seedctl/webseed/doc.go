// Package webseed fetches a torrent's bytes from HTTP servers: BEP 19 ("GetRight style") web
// seeds, the url-list of a .torrent, which Apache httpd or nginx serve as plain static files.
//
// A Seed maps the torrent's byte stream onto files below its URL:
//
//   - single-file torrent: the URL is the file itself, unless it ends in "/", in which case
//     the torrent's name is appended;
//   - multi-file torrent: URL + "/" (unless present) + name + "/" + path components,
//
// every appended component percent-escaped (url.PathEscape), so names holding spaces, '#',
// '?', '%', '+', ';' or non-ASCII characters reach the file they name.
//
// Fetch reads a range of the stream with one "Range: bytes=a-b" GET per file span (pad files
// of BEP 47 are zeros and never requested). Callers should fetch whole pieces or more at a time:
// a web seed asked for 16 KiB blocks crawls. A 206 answer must carry the Content-Range asked
// for. A server that ignores Range (a 200 with the whole file) is usable only where that costs
// little: when the whole file was asked for, or the file is at most SmallFile bytes, the slice
// needed is cut from the body; otherwise Fetch fails with ErrNoRange and the caller should drop
// the seed. Bodies are read no further than what was asked; connections are kept alive and
// reused; at most Options.MaxConns requests per Seed run at once.
package webseed
