package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/internal/version"
)

// TestPackageDeb builds the Debian package with scripts/package.sh (lintian must find no
// error), installs it into a throwaway root with the host's dpkg — maintainer scripts run, as
// `dpkg --root` runs them chrootless with DPKG_ROOT set — and checks what a web admin gets:
// the files, the conffiles, the `webswarm` user in group www-data, the units enabled and
// accepted by systemd-analyze, Apache (`a2enconf webswarm` and a site including the snippet)
// and nginx (a server including the snippet) accepting the installed configuration, both
// programs' --version; then remove keeps the conffiles and the state, and purge leaves nothing
// but what Debian policy keeps (the user account, dpkg's own records).
//
// Why not a buildah container: the offline base image TestDeployContainerImage makes holds a
// Go toolchain and a shell, no dpkg, useradd or perl (deb-systemd-helper), and none can be
// pulled here; dpkg's chrootless mode runs the same maintainer scripts against a root of
// their own.
func TestPackageDeb(t *testing.T) {
	for _, p := range [][2]string{
		{"dpkg-deb", "dpkg"}, {"help2man", "help2man"}, {"lintian", "lintian"},
		{"useradd", "passwd"}, {"deb-systemd-helper", "init-system-helpers"},
		{"systemd-analyze", "systemd"}, {"man", "man-db"},
		{"apache2ctl", "apache2"}, {"a2enconf", "apache2"}, {"nginx", "nginx"},
	} {
		testenv.Require(t, p[0], p[1])
	}
	if os.Geteuid() != 0 {
		testenv.Missing(t, "installing a package into a root of its own needs root (chown of its files)")
	}
	repo := testenv.RepoRoot(t)
	work := t.TempDir()
	dist := filepath.Join(work, "dist")
	pkgRun(t, repo, []string{"OUT=" + dist}, 15*time.Minute, "scripts/package.sh")
	deb := filepath.Join(dist, "webswarm_"+version.Version+"_amd64.deb")
	if _, err := os.Stat(deb); err != nil {
		t.Fatalf("package.sh made no %s: %v", filepath.Base(deb), err)
	}

	root := filepath.Join(work, "root")
	pkgMakeRoot(t, root)
	before := pkgTree(t, root)
	dpkg := func(args ...string) string {
		t.Helper()
		all := append([]string{"--root=" + root, "--force-script-chrootless", "--log=/dev/null"}, args...)
		return pkgRun(t, work, nil, 5*time.Minute, "dpkg", all...)
	}
	// --force-depends: the throwaway root's dpkg database is empty, so passwd (the package's
	// one dependency, for useradd, which runs from the host here) is not recorded in it.
	dpkg("--force-depends", "--install", deb)

	t.Run("files", func(t *testing.T) {
		listed := strings.Fields(dpkg("-L", "webswarm"))
		for _, want := range []string{
			"/usr/bin/webswarm-tracker", "/usr/bin/seedctl",
			"/usr/share/man/man1/webswarm-tracker.1.gz", "/usr/share/man/man1/seedctl.1.gz",
			"/usr/share/man/man1/seedctl-agent.1.gz", "/usr/share/man/man1/seedctl-publish.1.gz",
			"/etc/apache2/conf-available/webswarm.conf",
			"/etc/apache2/webswarm/webswarm-proxy.conf", "/etc/apache2/webswarm/webswarm-fcgi.conf",
			"/etc/apache2/webswarm/webswarm-fcgi-tcp.conf", "/etc/apache2/webswarm/webswarm-webseed.conf",
			"/etc/nginx/snippets/webswarm-proxy.conf", "/etc/nginx/snippets/webswarm-fcgi.conf",
			"/etc/nginx/snippets/webswarm-webseed.conf",
			"/etc/nginx/webswarm/webswarm-http.conf", "/etc/nginx/webswarm/webswarm-upstreams.conf",
			"/etc/default/webswarm-tracker", "/etc/default/webswarm-seed",
			"/lib/systemd/system/webswarm-tracker.service", "/lib/systemd/system/webswarm-seed.service",
			"/usr/share/doc/webswarm/copyright", "/usr/share/doc/webswarm/changelog.gz",
			"/usr/share/webswarm/monitoring/alert-rules.yml", "/usr/share/webswarm/monitoring/prometheus.yml",
			"/usr/share/webswarm/monitoring/dashboards/tracker.json",
		} {
			if !slices.Contains(listed, want) {
				t.Errorf("dpkg -L webswarm does not list %s", want)
			}
		}
		// nginx reads every file of conf.d at its next reload: the package puts none there.
		for _, f := range listed {
			if strings.HasPrefix(f, "/etc/nginx/conf.d/") {
				t.Errorf("the package ships %s, live in every nginx http {} on install", f)
			}
		}
		// Every file under /etc is a conffile, so that an admin's edit survives an upgrade.
		conffiles := pkgRun(t, work, nil, time.Minute, "dpkg-query", "--root="+root, "-W", "-f=${Conffiles}", "webswarm")
		for _, f := range listed {
			if st, err := os.Lstat(filepath.Join(root, f)); err == nil && st.Mode().IsRegular() &&
				strings.HasPrefix(f, "/etc/") && !strings.Contains(conffiles, " "+f+" ") {
				t.Errorf("%s is not a conffile; conffiles:\n%s", f, conffiles)
			}
		}
		for _, p := range []string{"webswarm-tracker", "seedctl"} {
			out := pkgRun(t, work, nil, time.Minute, filepath.Join(root, "usr/bin", p), "--version")
			if !strings.HasSuffix(strings.TrimSpace(out), " "+version.Version) {
				t.Errorf("installed %s --version: %q, want version %s", p, out, version.Version)
			}
		}
		page := pkgGunzip(t, filepath.Join(root, "usr/share/man/man1/webswarm-tracker.1.gz"))
		for _, want := range []string{".TH WEBSWARM-TRACKER", "max_total_peers", "fcgi_socket_group"} {
			if !strings.Contains(page, want) {
				t.Errorf("webswarm-tracker.1 lacks %q (made from the tracker's --help)", want)
			}
		}
		if page := pkgGunzip(t, filepath.Join(root, "usr/share/man/man1/seedctl-agent.1.gz")); !strings.Contains(page, "max-active") {
			t.Errorf("seedctl-agent.1 lacks the agent's --max-active flag:\n%s", testenv.Tail([]byte(page), 2000))
		}
	})

	t.Run("copyright", func(t *testing.T) {
		text, err := os.ReadFile(filepath.Join(root, "usr/share/doc/webswarm/copyright"))
		if err != nil {
			t.Fatal(err)
		}
		c := string(text)
		if !strings.HasPrefix(c, "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n") {
			t.Errorf("copyright is not machine-readable (DEP-5): %q", testenv.Tail(text[:min(len(text), 200)], 200))
		}
		// A paragraph, with a licence, for every module compiled into the installed programs.
		deps := pkgRun(t, work, nil, time.Minute, "go", "version", "-m",
			filepath.Join(root, "usr/bin/webswarm-tracker"), filepath.Join(root, "usr/bin/seedctl"))
		n := 0
		for _, line := range strings.Split(deps, "\n") {
			f := strings.Fields(line)
			if len(f) < 3 || f[0] != "dep" {
				continue
			}
			n++
			para := "Files: vendor/" + f[1] + "/*\n"
			i := strings.Index(c, para)
			if i < 0 {
				t.Errorf("copyright has no paragraph for the bundled module %s %s", f[1], f[2])
				continue
			}
			rest := c[i:]
			if end := strings.Index(rest, "\n\n"); end > 0 {
				rest = rest[:end]
			}
			if !regexp.MustCompile(`(?m)^License: \S+`).MatchString(rest) || !strings.Contains(rest, f[2]) {
				t.Errorf("copyright paragraph of %s lacks its version %s or licence:\n%s", f[1], f[2], rest)
			}
		}
		if n < 10 {
			t.Errorf("go version -m lists %d modules in the installed programs; expected the dependencies", n)
		}
		changelog := pkgGunzip(t, filepath.Join(root, "usr/share/doc/webswarm/changelog.gz"))
		head := regexp.MustCompile(`^webswarm \(` + regexp.QuoteMeta(version.Version) + `\) unstable; urgency=medium\n\n  \* `)
		trailer := regexp.MustCompile(`(?m)^ -- .+ <.+>  \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$`)
		if !head.MatchString(changelog) || !trailer.MatchString(changelog) {
			t.Errorf("changelog.gz is not in Debian's format (changelog(5)):\n%s", testenv.Tail([]byte(changelog), 1500))
		}
	})

	t.Run("user", func(t *testing.T) {
		passwd := pkgEntry(t, root, "passwd", "webswarm")
		f := strings.Split(passwd, ":")
		uid, _ := strconv.Atoi(f[2])
		if len(f) != 7 || uid == 0 || uid >= 1000 || f[6] != "/usr/sbin/nologin" {
			t.Errorf("webswarm is not a system account without a login: %q", passwd)
		}
		members := strings.Split(strings.Split(pkgEntry(t, root, "group", "www-data"), ":")[3], ",")
		if !slices.Contains(members, "webswarm") {
			t.Errorf("webswarm is not in group www-data (members %v): the tracker cannot hand its socket to the web server", members)
		}
		gid, _ := strconv.Atoi(strings.Split(pkgEntry(t, root, "group", "webswarm"), ":")[2])
		for _, d := range []string{"var/lib/webswarm-tracker", "var/lib/webswarm-seed", "var/log/webswarm-tracker"} {
			st, err := os.Stat(filepath.Join(root, d))
			if err != nil {
				t.Errorf("postinst made no /%s: %v", d, err)
				continue
			}
			sys := st.Sys().(*syscall.Stat_t)
			if int(sys.Uid) != uid || int(sys.Gid) != gid || st.Mode().Perm() != 0o750 {
				t.Errorf("/%s: %d:%d %v, want webswarm's %d:%d 0750", d, sys.Uid, sys.Gid, st.Mode().Perm(), uid, gid)
			}
		}
	})

	t.Run("units", func(t *testing.T) {
		// Enabled (the links deb-systemd-helper makes), never started by the package.
		for _, u := range []string{"webswarm-tracker.service", "webswarm-seed.service"} {
			link := filepath.Join(root, "etc/systemd/system/multi-user.target.wants", u)
			if target, err := os.Readlink(link); err != nil || target != "/lib/systemd/system/"+u {
				t.Errorf("%s is not enabled: %s -> %q (%v)", u, link, target, err)
			}
		}
		// systemd-analyze verify on the installed files. It checks that ExecStart's program
		// exists and that the Documentation= man pages open, on the host: so ExecStart of a
		// copy points into the throwaway root (nothing else changes) and MANPATH at its pages.
		dir := t.TempDir()
		var units []string
		for _, u := range []string{"webswarm-tracker.service", "webswarm-seed.service"} {
			text, err := os.ReadFile(filepath.Join(root, "lib/systemd/system", u))
			if err != nil {
				t.Fatal(err)
			}
			unit := string(text)
			for _, want := range []string{"\nUser=webswarm\n", "\nSupplementaryGroups=www-data\n", "\nExecStart=/usr/bin/", "\nStateDirectory=webswarm-"} {
				if !strings.Contains(unit, want) {
					t.Errorf("%s lacks %q", u, strings.TrimSpace(want))
				}
			}
			if strings.Contains(unit, "/usr/local/") || strings.Contains(unit, "DynamicUser=") {
				t.Errorf("%s still has the unpackaged unit's /usr/local path or DynamicUser", u)
			}
			copyUnit := strings.Replace(unit, "\nExecStart=/usr/bin/", "\nExecStart="+filepath.Join(root, "usr/bin")+"/", 1)
			p := filepath.Join(dir, u)
			if err := os.WriteFile(p, []byte(copyUnit), 0o644); err != nil {
				t.Fatal(err)
			}
			units = append(units, p)
		}
		tracker, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/webswarm-tracker.service"))
		// The FastCGI socket the Apache and nginx snippets name, in a directory www-data can enter.
		if !strings.Contains(string(tracker), "\nRuntimeDirectory=webswarm\n") || !strings.Contains(string(tracker), "\nRuntimeDirectoryMode=0755\n") {
			t.Errorf("webswarm-tracker.service: the runtime directory is not /run/webswarm, mode 0755")
		}
		out := pkgRun(t, dir, []string{"MANPATH=" + filepath.Join(root, "usr/share/man")}, 2*time.Minute,
			"systemd-analyze", append([]string{"verify"}, units...)...)
		if strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify warns about the installed units:\n%s", out)
		}
	})

	t.Run("apache", func(t *testing.T) {
		// The host's Debian Apache configuration, copied, with the package's files where the
		// package puts them: `a2enconf webswarm` and a site including the proxy snippet.
		conf := filepath.Join(t.TempDir(), "apache2")
		pkgRun(t, work, nil, time.Minute, "cp", "-a", "/etc/apache2", conf)
		pkgRun(t, work, nil, time.Minute, "cp", "-a", filepath.Join(root, "etc/apache2")+"/.", conf)
		// a2enconf and friends record what the admin enabled under APACHE_STATE_DIRECTORY
		// (/var/lib/apache2 by default): kept in the test's directory too.
		env := []string{"APACHE_CONFDIR=" + conf, "APACHE_STATE_DIRECTORY=" + filepath.Join(filepath.Dir(conf), "state")}
		pkgRun(t, work, env, time.Minute, "a2enconf", "-q", "webswarm")
		pkgRun(t, work, env, time.Minute, "a2enmod", "-q", "proxy", "proxy_http", "headers", "alias", "mime", "authz_core", "authz_host")
		site := fmt.Sprintf(`<VirtualHost 127.0.0.1:%d>
    ServerName downloads.example.org
    DocumentRoot /var/www/html
    Define WEBSWARM_TRACKER 127.0.0.1:6969
    Include %s/webswarm/webswarm-proxy.conf
</VirtualHost>
`, testenv.FreePort(t, "127.0.0.1"), conf)
		if err := os.WriteFile(filepath.Join(conf, "sites-available/webswarm-test.conf"), []byte(site), 0o644); err != nil {
			t.Fatal(err)
		}
		pkgRun(t, work, env, time.Minute, "a2ensite", "-q", "webswarm-test")
		out := pkgRun(t, work, env, time.Minute, "apache2ctl", "-t", "-D", "DUMP_INCLUDES")
		for _, want := range []string{"conf-enabled/webswarm.conf", "webswarm/webswarm-proxy.conf"} {
			if !strings.Contains(out, want) {
				t.Errorf("apache2ctl -t did not read %s:\n%s", want, out)
			}
		}
	})

	t.Run("nginx", func(t *testing.T) {
		// Debian's nginx.conf layout: conf.d/*.conf inside http {} after mime.types, where the
		// admin links the package's two http {} files, and a server including the snippet.
		dir := t.TempDir()
		etc := filepath.Join(root, "etc/nginx")
		confd := filepath.Join(dir, "conf.d")
		if err := os.Mkdir(confd, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"webswarm-http.conf", "webswarm-upstreams.conf"} {
			if err := os.Symlink(filepath.Join(etc, "webswarm", f), filepath.Join(confd, f)); err != nil {
				t.Fatal(err)
			}
		}
		for _, sub := range []string{"client", "proxy", "fastcgi", "uwsgi", "scgi"} {
			if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		conf := fmt.Sprintf(`pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events {}
http {
    include /etc/nginx/mime.types;
    include %[1]s/conf.d/*.conf;
    access_log off;
    client_body_temp_path %[1]s/client;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    server {
        listen 127.0.0.1:%[2]d;
        root /var/www/html;
        include %[3]s/snippets/webswarm-proxy.conf;
    }
}
`, dir, testenv.FreePort(t, "127.0.0.1"), etc)
		p := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out := pkgRun(t, dir, nil, time.Minute, "nginx", "-t", "-p", dir, "-c", p)
		if !strings.Contains(out, "test is successful") {
			t.Errorf("nginx -t:\n%s", out)
		}
	})

	// Installing again (dpkg's upgrade path: postinst configure with the old version) keeps
	// an admin's edit of a conffile and runs the maintainer scripts again without error.
	defaults := filepath.Join(root, "etc/default/webswarm-tracker")
	edited := "TRACKER_OPTS=\"--allowed_dir /var/www/html\"\n"
	if err := os.WriteFile(defaults, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	dpkg("--force-depends", "--force-confold", "--install", deb)
	if b, _ := os.ReadFile(defaults); string(b) != edited {
		t.Errorf("reinstalling replaced the admin's /etc/default/webswarm-tracker with:\n%s", b)
	}
	if n := strings.Count(string(pkgTreeFile(t, root, "etc/passwd")), "\nwebswarm:"); n != 1 {
		t.Errorf("after a second install /etc/passwd has %d webswarm accounts", n)
	}

	// Remove keeps the conffiles and the services' state; purge takes both.
	state := filepath.Join(root, "var/lib/webswarm-tracker/tracker-state.bencode")
	if err := os.WriteFile(state, []byte("de"), 0o640); err != nil {
		t.Fatal(err)
	}
	dpkg("--remove", "webswarm")
	for _, keep := range []string{"etc/default/webswarm-tracker", "etc/apache2/conf-available/webswarm.conf", "var/lib/webswarm-tracker/tracker-state.bencode"} {
		if _, err := os.Stat(filepath.Join(root, keep)); err != nil {
			t.Errorf("remove (not purge) took /%s: %v", keep, err)
		}
	}
	for _, gone := range []string{"usr/bin/webswarm-tracker", "lib/systemd/system/webswarm-tracker.service"} {
		if _, err := os.Stat(filepath.Join(root, gone)); err == nil {
			t.Errorf("remove left /%s", gone)
		}
	}
	dpkg("--purge", "webswarm")
	status, err := os.ReadFile(filepath.Join(root, "var/lib/dpkg/status"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^Package: webswarm\nStatus: (.*)$`).FindSubmatch(status); m != nil && !bytes.HasSuffix(m[1], []byte(" not-installed")) {
		t.Errorf("after purge dpkg still records webswarm as %q", m[1])
	}
	after := pkgTree(t, root)
	// What may remain: the account (Debian packages keep the system users they made: a
	// reused UID would inherit files left elsewhere) with the backups useradd writes, and
	// dpkg's own database.
	kept := regexp.MustCompile(`^(etc/(passwd|group|shadow|gshadow)-?|var/lib/dpkg(/.*)?)$`)
	for p := range after {
		if _, ok := before[p]; ok || kept.MatchString(p) {
			continue
		}
		t.Errorf("purge left /%s", p)
	}
	if pkgEntry(t, root, "passwd", "webswarm") == "" {
		t.Errorf("purge removed the webswarm account")
	}
}

// pkgRun runs name with args in dir, with env added to the environment, bounded by timeout,
// and returns its combined output; a failure or a timeout fails the test.
func pkgRun(t testing.TB, dir string, env []string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: still running after %v:\n%s", name, strings.Join(args, " "), timeout, testenv.Tail(out, 4000))
	}
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, testenv.Tail(out, 4000))
	}
	return string(out)
}

// pkgMakeRoot lays out an empty root dpkg can install into: an empty package database, the
// account files of a fresh Debian (root; www-data, which base-passwd provides) and systemd's
// directories.
func pkgMakeRoot(t *testing.T, root string) {
	t.Helper()
	// Directories every Debian system has: systemd's, where deb-systemd-helper records and
	// links enabled units.
	for _, d := range []string{"var/lib/dpkg/updates", "var/lib/dpkg/info", "etc/systemd/system", "var/lib/systemd", "var/log"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	defs, err := os.ReadFile("/etc/login.defs") // useradd's ranges for system accounts
	if err != nil {
		t.Fatalf("useradd needs /etc/login.defs: %v", err)
	}
	for name, text := range map[string]string{
		"var/lib/dpkg/status": "",
		"etc/passwd":          "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n",
		"etc/group":           "root:x:0:\nwww-data:x:33:\n",
		"etc/shadow":          "root:*:19000:0:99999:7:::\nwww-data:*:19000:0:99999:7:::\n",
		"etc/gshadow":         "root:*::\nwww-data:*::\n",
		"etc/login.defs":      string(defs),
	} {
		mode := fs.FileMode(0o644)
		if strings.Contains(name, "shadow") {
			mode = 0o640
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// pkgTree returns every path under root, relative to it.
func pkgTree(t *testing.T, root string) map[string]struct{} {
	t.Helper()
	paths := map[string]struct{}{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(root, p); rel != "." {
			paths[rel] = struct{}{}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// pkgTreeFile returns the content of the file rel under root.
func pkgTreeFile(t *testing.T, root, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pkgEntry returns the line of the account file db (passwd, group) of root for name, or "".
func pkgEntry(t *testing.T, root, db, name string) string {
	t.Helper()
	for _, line := range strings.Split(string(pkgTreeFile(t, root, filepath.Join("etc", db))), "\n") {
		if strings.HasPrefix(line, name+":") {
			return line
		}
	}
	return ""
}

// pkgGunzip returns the decompressed content of a .gz file.
func pkgGunzip(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(text)
}
