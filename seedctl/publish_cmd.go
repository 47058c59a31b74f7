package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/webswarm/webswarm/seedctl/metafile"
)

// rangeCheckTimeout bounds each HTTP request publish makes to the site.
const rangeCheckTimeout = 10 * time.Second

func newPublishCmd() *cobra.Command {
	var p publishOptions
	cmd := &cobra.Command{
		Use:   "publish FILE --site https://example.org [--docroot DIR]",
		Short: "Make FILE.torrent beside a file under the web server's document root",
		Long: "publish is the web admin's one-liner. From FILE's path under the document root it derives the file's URL\n" +
			"on --site, makes FILE.torrent beside it with the site's tracker (--tracker-path) as announce URL and the\n" +
			"file's own URL as web seed (BEP 19), and prints the magnet link and an HTML link to paste into a page.\n" +
			"A directory is published as a multi-file torrent whose web seed is its parent directory's URL.\n\n" +
			"Before writing it asks the web server for the file with a Range request and warns unless the answer is\n" +
			"206 with the file's length: Transmission cannot use a web seed without Range support.\n\n" +
			"If an agent is running (on the socket under --state, or at --agent), the new torrent is added to it, so\n" +
			"that it is seeded at once; --no-agent skips that. No agent running is not an error.\n\n" +
			"Browsers: the torrent also lists the site's WebSocket (WebTorrent) announce URL, in a tier after the HTTP\n" +
			"one so that desktop clients are not slowed (--ws-tracker). --page writes FILE.html beside FILE, a download\n" +
			"page: a button downloads the file in the browser with the webtorrent bundle (--bundle-url, a path on the\n" +
			"site: npm install --ignore-scripts webtorrent@3 and copy node_modules/webtorrent/dist/webtorrent.min.js\n" +
			"there) from other visitors and from the web seed (see webswarm-webseed.conf), and falls back to the plain\n" +
			"link. --html prints the same download box to paste into a page of the site.\n\n" +
			"Piece size " + metafile.PieceSizeRule + ".",
		Example: "  seedctl publish /var/www/html/iso/big.iso --site https://example.org",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.file = args[0]
			return runPublish(cmd, &p)
		},
	}
	p.make.register(cmd, true)
	fl := cmd.Flags()
	fl.StringVar(&p.site, "site", "", "the site's base URL, which serves the document root (required)")
	fl.StringVar(&p.docroot, "docroot", "/var/www/html", "the web server's document root")
	fl.StringVar(&p.trackerPath, "tracker-path", "/announce", "the tracker's announce path on the site (or a full URL)")
	fl.BoolVar(&p.noCheck, "no-check", false, "do not ask the web server whether it serves the file with Range support")
	fl.BoolVar(&p.noAgent, "no-agent", false, "do not add the new torrent to a running agent")
	p.agent.register(cmd)
	p.page.register(cmd)
	_ = cmd.MarkFlagRequired("site")
	return cmd
}

// publishOptions are publish's argument and flags.
type publishOptions struct {
	file        string    // the payload under the document root
	site        string    // --site: the base URL serving the document root
	docroot     string    // --docroot
	trackerPath string    // --tracker-path: a path on the site or a full URL
	noCheck     bool      // --no-check: do not ask the web server about the file
	noAgent     bool      // --no-agent: do not add the torrent to a running agent
	make        makeFlags // the flags publish shares with make
	agent       agentFlags
	page        pageFlags
}

// runPublish makes and writes the torrent, checks the web server, and adds the torrent to the
// running agent p.agent names (none with --no-agent).
func runPublish(cmd *cobra.Command, p *publishOptions) error {
	f, pf := &p.make, &p.page
	siteURL, err := url.Parse(p.site)
	if err != nil || (siteURL.Scheme != "http" && siteURL.Scheme != "https") || siteURL.Host == "" || siteURL.RawQuery != "" || siteURL.Fragment != "" {
		return fmt.Errorf("--site %q: want the site's base URL, like https://example.org", p.site)
	}
	if err := pf.check(); err != nil {
		return err
	}
	st, err := os.Stat(p.file)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	u, err := p.urls(siteURL, st.IsDir())
	if err != nil {
		return err
	}
	r := published{tracker: u.tracker, webSeed: u.webSeed}
	if r.wsTracker, err = pf.wsTrackerFor(u.tracker); err != nil {
		return err
	}
	if r.wsTracker != "" {
		// A tier of its own after the HTTP one: BEP 12 clients try the next tier only when a
		// whole tier fails, so desktop clients never wait for a URL they cannot use.
		f.trackers = append([]string{u.tracker, r.wsTracker}, f.trackers...)
	} else {
		f.trackers = append([]string{u.tracker}, f.trackers...)
	}
	f.webSeeds = append([]string{u.webSeed}, f.webSeeds...)
	o, err := f.options([]string{p.file})
	if err != nil {
		return err
	}
	out := f.output
	if out == "" {
		out = filepath.Clean(p.file) + ".torrent"
	}
	if err := preflightOutput(out, f.force); err != nil {
		return err
	}
	if pf.page || pf.html {
		if _, err := pathUnder(out, p.docroot); err != nil {
			return fmt.Errorf("--page and --html need the .torrent under the document root: %w", err)
		}
	}
	if pf.page {
		r.pageOut = filepath.Clean(p.file) + ".html"
		if err := preflightOutput(r.pageOut, f.force); err != nil {
			return err
		}
	}
	// A single file's URL is known now: ask the web server while hashing runs, so that a
	// wrong --site is reported with the rest and costs no extra wait.
	var early chan string
	if !p.noCheck && !st.IsDir() {
		early = make(chan string, 1)
		go func() { early <- checkRange(cmd.Context(), u.webSeed, st.Size()) }()
	}
	made, err := hashWithProgress(cmd.Context(), f, o, out)
	if err != nil {
		if early != nil {
			<-early
		}
		return err
	}

	warn := func(format string, a ...any) {
		w := fmt.Sprintf(format, a...)
		r.warnings = append(r.warnings, w)
		if !f.json {
			fmt.Fprintf(cmd.ErrOrStderr(), "seedctl: warning: %s\n", w)
		}
	}
	if early != nil {
		if w := <-early; w != "" {
			warn("%s", w)
		}
	} else if !p.noCheck {
		t, err := metafile.Parse(made.Torrent)
		if err != nil {
			return fmt.Errorf("reading back the new torrent: %w", err)
		}
		s := metafile.Summarize(t)
		first := s.Files[0]
		checkURL := u.webSeed
		if st.IsDir() {
			checkURL = u.webSeed + escapePath(first.Path)
		}
		if w := checkRange(cmd.Context(), checkURL, first.Length); w != "" {
			warn("%s", w)
		}
	}
	if err := metafile.WriteFile(out, made.Torrent, f.force); err != nil {
		return err
	}
	r.torrentURL = u.file + ".torrent"
	if f.output != "" {
		if rel, err := pathUnder(out, p.docroot); err == nil {
			r.torrentURL = u.base + "/" + escapePath(rel)
		} else {
			r.torrentURL = ""
			warn("%s is outside the document root %s: the web server will not serve it", out, p.docroot)
		}
	}
	if !p.noCheck && r.torrentURL != "" {
		if w := checkType(cmd.Context(), r.torrentURL, "add the .torrent type (see httpd-conf/ or nginx-conf/)", "application/x-bittorrent"); w != "" {
			warn("%s", w)
		}
	}
	if pf.page || pf.html {
		if err := p.writePage(cmd.Context(), made, u, &r, warn); err != nil {
			return err
		}
	}
	if !p.noAgent {
		abs, err := filepath.Abs(p.file)
		if err != nil {
			return err
		}
		// The payload's directory, given explicitly: with -o the .torrent is not beside it.
		r.agentLine, err = addToAgent(cmd.Context(), &p.agent, out, filepath.Dir(abs))
		if err != nil {
			warn("%v", err)
		}
	}
	if r.torrentURL != "" {
		r.snippet = fmt.Sprintf(`<a href="%s" type="application/x-bittorrent">%s</a> (%s)`,
			html.EscapeString(r.torrentURL), html.EscapeString(made.Name), metafile.FormatSize(made.TotalLength))
	}
	err = printMade(cmd.OutOrStdout(), f, made, out, func(j *madeJSON) {
		j.TorrentURL, j.WebSeed, j.Tracker, j.HTML, j.Warnings = r.torrentURL, r.webSeed, r.tracker, r.snippet, r.warnings
		j.WSTracker, j.PageURL, j.Box = r.wsTracker, r.pageURL, r.box
		if r.pageURL != "" {
			j.Page = r.pageOut
		}
	})
	if err != nil {
		return err
	}
	if f.json {
		if r.agentLine != "" {
			fmt.Fprintln(cmd.ErrOrStderr(), strings.Join(strings.Fields(r.agentLine), " ")) // stdout holds the JSON
		}
		return nil
	}
	r.print(cmd.OutOrStdout(), p.docroot)
	return nil
}

// publishURLs are the URLs publish derives from --site, --tracker-path and the payload's path
// under --docroot.
type publishURLs struct {
	site    *url.URL
	base    string // the site's base URL, without a trailing '/'
	file    string // the payload's URL
	tracker string // the announce URL
	webSeed string // BEP 19: the file's URL, or for a directory its parent's, ending in '/'
}

// urls derives the payload's URLs; isDir tells a directory (a multi-file torrent).
func (p *publishOptions) urls(siteURL *url.URL, isDir bool) (publishURLs, error) {
	rel, err := pathUnder(p.file, p.docroot)
	if err != nil {
		return publishURLs{}, err
	}
	u := publishURLs{site: siteURL}
	u.base = strings.TrimSuffix(siteURL.Scheme+"://"+siteURL.Host+siteURL.EscapedPath(), "/")
	u.file = u.base + "/" + escapePath(rel)
	if t, err := url.Parse(p.trackerPath); err == nil && t.Scheme != "" {
		u.tracker = p.trackerPath
	} else if strings.HasPrefix(p.trackerPath, "/") {
		u.tracker = siteURL.Scheme + "://" + siteURL.Host + p.trackerPath
	} else {
		return publishURLs{}, fmt.Errorf("--tracker-path %q: want a path starting with '/' or a full URL", p.trackerPath)
	}
	u.webSeed = u.file
	if isDir {
		// BEP 19: for a multi-file torrent the client appends name/path to a URL ending in '/'.
		u.webSeed = u.file[:strings.LastIndexByte(u.file, '/')+1]
	}
	return u, nil
}

// published is what publish made and reports.
type published struct {
	torrentURL, tracker, wsTracker, webSeed string
	snippet                                 string // the HTML link to the .torrent
	pageURL, pageOut                        string // --page: the download page's URL and file
	box                                     string // --html: the download box
	agentLine                               string // what the agent said to the add
	warnings                                []string
}

// writePage writes the download page (--page) and renders the download box (--html) into r,
// and checks that the site serves the webtorrent bundle they load.
func (p *publishOptions) writePage(ctx context.Context, made *metafile.Made, u publishURLs, r *published, warn func(string, ...any)) error {
	pf := &p.page
	info, err := newPageInfo(made, r.torrentURL, u.file, pf.bundleURL, pf.stun, int64(pf.maxSize))
	if err != nil {
		return err
	}
	if pf.page {
		doc, err := info.render("page")
		if err != nil {
			return err
		}
		if err := metafile.WriteFile(r.pageOut, []byte(doc), p.make.force); err != nil {
			return err
		}
		r.pageURL = u.file + ".html"
	}
	if pf.html {
		if r.box, err = info.render("box"); err != nil {
			return err
		}
	}
	if !p.noCheck {
		bundle := pf.bundleURL
		if strings.HasPrefix(bundle, "/") {
			bundle = u.site.Scheme + "://" + u.site.Host + bundle
		}
		if w := checkType(ctx, bundle, "the download page needs the webtorrent bundle there: npm install --ignore-scripts webtorrent@3, then copy node_modules/webtorrent/dist/webtorrent.min.js", "text/javascript", "application/javascript"); w != "" {
			warn("%s", w)
		}
	}
	return nil
}

// print writes the plain-text report that follows make's summary.
func (r *published) print(w io.Writer, docroot string) {
	fmt.Fprintf(w, "torrent URL:  %s\n", r.torrentURL)
	fmt.Fprintf(w, "tracker:      %s\n", r.tracker)
	if r.wsTracker != "" {
		fmt.Fprintf(w, "ws tracker:   %s\n", r.wsTracker)
	}
	fmt.Fprintf(w, "web seed:     %s\n", r.webSeed)
	if r.snippet != "" {
		fmt.Fprintf(w, "HTML:         %s\n", r.snippet)
	}
	if r.pageURL != "" {
		fmt.Fprintf(w, "page:         %s (%s)\n", r.pageURL, r.pageOut)
	}
	if r.agentLine != "" {
		fmt.Fprintln(w, r.agentLine)
	}
	fmt.Fprintf(w, "If tracker runs with --allowed_dir %s, it accepts this torrent at its next rescan of that directory.\n", docroot)
	if r.box != "" {
		fmt.Fprintf(w, "Download box to paste into a page of the site:\n%s", r.box)
	}
}

// pathUnder returns p relative to root, slash-separated, or an error if p is not inside root.
// Symbolic links are resolved on both sides, as the web server sees the real files.
func pathUnder(p, root string) (string, error) {
	rp, err := resolve(p)
	if err != nil {
		return "", err
	}
	rr, err := resolve(root)
	if err != nil {
		return "", fmt.Errorf("--docroot: %w", err)
	}
	rel, err := filepath.Rel(rr, rp)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s is not under the document root %s (set --docroot)", p, root)
	}
	return filepath.ToSlash(rel), nil
}

// resolve makes p absolute with symbolic links resolved; a file that does not exist yet
// (an output path) is resolved through its directory.
func resolve(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	r, err := filepath.EvalSymlinks(abs)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	d, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", err
	}
	return filepath.Join(d, filepath.Base(abs)), nil
}

// escapePath percent-escapes each component of a slash-separated path for a URL (spaces, '#',
// '%', '?', non-ASCII...).
func escapePath(rel string) string {
	parts := strings.Split(rel, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// checkRange asks u for its first byte and returns a warning unless the server answers 206
// with Content-Range showing size bytes, as web-seed clients need.
func checkRange(ctx context.Context, u string, size int64) string {
	ctx, cancel := context.WithTimeout(ctx, rangeCheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Sprintf("web seed %s: %v", u, err)
	}
	req.Header.Set("Range", "bytes=0-0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Sprintf("web seed %s is not reachable (%v): downloaders get no web seed until the web server serves it", u, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusPartialContent:
	case http.StatusOK:
		return fmt.Sprintf("web seed %s ignores Range requests (200 instead of 206): Transmission cannot use it, other clients download whole files", u)
	default:
		return fmt.Sprintf("web seed %s answers %s: is --site or --docroot wrong, or is the file not published?", u, resp.Status)
	}
	cr := resp.Header.Get("Content-Range") // "bytes 0-0/SIZE"
	i := strings.LastIndexByte(cr, '/')
	if i < 0 {
		return fmt.Sprintf("web seed %s: 206 without a usable Content-Range (%q)", u, cr)
	}
	n, err := strconv.ParseInt(cr[i+1:], 10, 64)
	if err != nil || n != size {
		return fmt.Sprintf("web seed %s serves %s bytes, the file has %d: is --site or --docroot wrong?", u, cr[i+1:], size)
	}
	return ""
}

// checkType returns a warning unless the server serves u with one of the media types want;
// fix tells the admin what to do.
func checkType(ctx context.Context, u, fix string, want ...string) string {
	ctx, cancel := context.WithTimeout(ctx, rangeCheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Sprintf("%s is not reachable (%v)", u, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("%s answers %s: %s", u, resp.Status, fix)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if !slices.Contains(want, mt) {
		return fmt.Sprintf("%s is served as %q, not %s: %s", u, resp.Header.Get("Content-Type"), want[0], fix)
	}
	return ""
}
