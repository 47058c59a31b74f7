package e2e

// Deployment (issue 7, "Deployment"): the systemd units and the container image, checked with
// the real tools.
//
//   - TestDeploySystemdUnits: `systemd-analyze verify` accepts each unit in systemd/ (with no
//     warning: verify exits 0 on unknown keys and bad values, so its output must be empty),
//     `systemd-analyze security --offline` rates it at most 2.0 ("OK"), the hardening the
//     issue asks for is there, every flag in ExecStart is one the program's --help lists, and
//     the addresses match the targets of monitoring/prometheus.yml. verify needs the binaries
//     named in ExecStart: the test builds them and points ExecStart (and only ExecStart) of a
//     temporary copy of each unit at them.
//   - TestDeployContainerImage: builds the Dockerfile for real with buildah (no daemon, vfs
//     storage, chroot isolation, all of it in a temporary --root that is removed afterwards),
//     from the files git tracks (untracked work in progress stays out of the context).
//     Base images cannot be pulled here, so the test first makes
//     docker.io/library/golang:1.26-bookworm from scratch: the host's Go toolchain (without
//     its own sources and tests), a shell and the few coreutils the Dockerfile's RUN lines use,
//     CA certificates. Modules come from the host's module cache, mounted read-only as a
//     file:// GOPROXY ahead of the host's own GOPROXY, so the build works offline; the host's
//     GOFLAGS are passed too, and its build cache is mounted so that a second run compiles
//     little. Then the image must be what the Dockerfile promises (non-root, static binaries,
//     no shell, a volume, 6969 tcp+udp) and must start: `buildah run` the tracker, which
//     answers announces on loopback and saves its state into the volume as its own user.

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
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
)

// depUnit is a systemd unit file: its directives by section and key, in order.
type depUnit map[string]map[string][]string

// depParseUnit reads a unit file: comments, line continuations and repeated keys as systemd
// reads them (an empty assignment resets the list).
func depParseUnit(text string) depUnit {
	u := depUnit{}
	section := ""
	var logical []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, ";")) {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		logical = append(logical, cur.String())
		cur.Reset()
	}
	for _, l := range logical {
		if strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]") {
			section = l[1 : len(l)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || section == "" {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if v == "" {
			u[section][k] = nil
			continue
		}
		u[section][k] = append(u[section][k], v)
	}
	return u
}

// get returns the last value of a [Service] key.
func (u depUnit) get(key string) string {
	vs := u["Service"][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// depWords splits a command line as systemd does: whitespace, with "..." or '...' quoting.
func depWords(s string) []string {
	var words []string
	var w strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			w.WriteByte(c)
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, w.String())
	}
	return words
}

// depFlag returns the value following --name in words.
func depFlag(words []string, name string) string {
	for i, w := range words {
		if (w == "--"+name || w == "-"+name) && i+1 < len(words) {
			return words[i+1]
		}
	}
	return ""
}

func TestDeploySystemdUnits(t *testing.T) {
	sa := testenv.Require(t, "systemd-analyze", "systemd")
	root := testenv.RepoRoot(t)
	bins := map[string]string{
		"/usr/local/bin/tracker": testenv.Build(t, "./tracker"),
		"/usr/local/bin/seedctl": testenv.Build(t, "./seedctl"),
	}
	targets := depConfigTargets(t)

	for _, name := range []string{"webswarm-tracker.service", "webswarm-seed.service"} {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(root, "systemd", name))
			if err != nil {
				t.Fatal(err)
			}
			u := depParseUnit(string(src))
			state := strings.TrimSuffix(name, ".service")

			// What the issue asks of both units.
			want := map[string]string{
				"ProtectSystem":   "strict",
				"NoNewPrivileges": "yes",
				"PrivateTmp":      "yes",
				"Restart":         "on-failure",
				"StateDirectory":  state,
				"DynamicUser":     "yes",
				"ExecReload":      "/bin/kill -HUP $MAINPID",
			}
			for k, v := range want {
				if got := u.get(k); got != v {
					t.Errorf("%s=%q, want %q", k, got, v)
				}
			}
			if u["Install"]["WantedBy"] == nil {
				t.Error("no [Install] WantedBy=: `systemctl enable` would do nothing")
			}

			argv := depWords(u.get("ExecStart"))
			if len(argv) == 0 {
				t.Fatal("no ExecStart=")
			}
			bin, ok := bins[argv[0]]
			if !ok {
				t.Fatalf("ExecStart runs %s, want one of %v", argv[0], slices.Collect(maps.Keys(bins)))
			}
			// Each flag must be one the program knows.
			var sub []string
			for _, w := range argv[1:] {
				if strings.HasPrefix(w, "-") {
					break
				}
				sub = append(sub, w)
			}
			help, helpErr := monRun("", time.Minute, bin, append(slices.Clone(sub), "--help")...)
			if helpErr != nil && filepath.Base(argv[0]) == "seedctl" && strings.Contains(help, `unknown command "agent"`) {
				// The seeding agent is built after this unit (issue 7); verify still checks the rest.
				t.Logf("seedctl agent does not exist yet: its flags in ExecStart are not checked")
			} else if helpErr != nil {
				t.Errorf("%s %s --help: %v\n%s", argv[0], strings.Join(sub, " "), helpErr, help)
			} else {
				for _, w := range argv[1:] {
					f, ok := strings.CutPrefix(w, "--")
					if !ok || strings.HasPrefix(f, "$") {
						continue
					}
					if !regexp.MustCompile(`(?m)^\s+(-\w, )?--?` + regexp.QuoteMeta(f) + `\b`).MatchString(help) {
						t.Errorf("ExecStart flag --%s is not in `%s --help`", f, strings.Join(append([]string{filepath.Base(argv[0])}, sub...), " "))
					}
				}
			}

			// The addresses Prometheus scrapes (monitoring/prometheus.yml) are the units'.
			switch state {
			case "webswarm-tracker":
				addr := net.JoinHostPort(depFlag(argv, "bind"), depFlag(argv, "port"))
				if targets[state] != addr {
					t.Errorf("tracker listens on %s, prometheus.yml scrapes %q", addr, targets[state])
				}
			case "webswarm-seed":
				if got := depFlag(argv, "metrics"); targets[state] != got {
					t.Errorf("agent --metrics %s, prometheus.yml scrapes %q", got, targets[state])
				}
				if got := depFlag(argv, "state"); got != "%S/"+state {
					t.Errorf("agent --state %q, want its StateDirectory %%S/%s", got, state)
				}
				if !slices.Contains(u["Service"]["ReadWritePaths"], depFlag(argv, "dir")) {
					t.Errorf("ReadWritePaths=%v does not hold the web root --dir %s", u["Service"]["ReadWritePaths"], depFlag(argv, "dir"))
				}
			}

			// A copy with ExecStart pointing at the built binary, for verify.
			dir := t.TempDir()
			copyText := strings.Replace(string(src), "ExecStart="+argv[0], "ExecStart="+bin, 1)
			if copyText == string(src) {
				t.Fatalf("ExecStart=%s not found as written", argv[0])
			}
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(copyText), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := monRun(dir, time.Minute, sa, "verify", path)
			if err != nil || strings.TrimSpace(out) != "" {
				t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
			}
			out, err = monRun(dir, time.Minute, sa, "security", "--offline=true", "--threshold=20", path)
			if err != nil {
				t.Errorf("systemd-analyze security: exposure over 2.0 (%v):\n%s", err, out)
			}
			if i := strings.LastIndex(out, "Overall exposure level"); i >= 0 {
				t.Log(strings.TrimSpace(out[i:]))
			}
		})
	}
}

// depConfigTargets returns the one static target of each job in monitoring/prometheus.yml.
func depConfigTargets(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, sc := range monList(monReadConfig(t)["scrape_configs"]) {
		m, _ := sc.(map[string]any)
		for _, st := range monList(m["static_configs"]) {
			s, _ := st.(map[string]any)
			for _, tg := range monList(s["targets"]) {
				out[fmt.Sprint(m["job_name"])] = fmt.Sprint(tg)
			}
		}
	}
	return out
}

// depBuildah runs buildah against storage in a directory of its own.
type depBuildah struct {
	bin, dir string
}

func (b *depBuildah) cmd(ctx context.Context, args ...string) *exec.Cmd {
	all := append([]string{"--root", filepath.Join(b.dir, "storage"), "--runroot", filepath.Join(b.dir, "run"),
		"--storage-driver", "vfs"}, args...)
	cmd := exec.CommandContext(ctx, b.bin, all...)
	// buildah's own temporary files (/var/tmp by default) stay inside b.dir as well.
	cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(b.dir, "tmp"))
	return cmd
}

// run runs buildah to completion within timeout and returns its combined output.
func (b *depBuildah) run(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	out, err := b.cmd(ctx, args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("buildah %s: still running after %v:\n%s", strings.Join(args, " "), timeout, testenv.Tail(out, 4000))
	}
	if err != nil {
		t.Fatalf("buildah %s: %v:\n%s", strings.Join(args, " "), err, testenv.Tail(out, 4000))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Logf("buildah %s: %v", args[0], d.Round(100*time.Millisecond))
	}
	return strings.TrimSpace(string(out))
}

// depMounts lists the mount points under dir in this mount namespace.
func depMounts(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return []string{"(cannot read /proc/self/mountinfo: " + err.Error() + ")"}
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}

func TestDeployContainerImage(t *testing.T) {
	bin := testenv.Require(t, "buildah", "buildah")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "webswarm-buildah-")
	if err != nil {
		t.Fatal(err)
	}
	b := &depBuildah{bin: bin, dir: dir}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = b.cmd(ctx, "rm", "--all").Run()
		_ = b.cmd(ctx, "rmi", "--all", "--force").Run()
		// Never remove a tree something is still mounted in: RemoveAll would go through the
		// mount into the host's files (the module and build caches are bind-mounted by bud).
		if m := depMounts(dir); len(m) > 0 {
			t.Errorf("mounts left under %s, not removed: %v", dir, m)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove buildah storage: %v", err)
		}
	})
	goEnv := func(name string) string {
		out, err := exec.Command(goBin, "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	total := time.Now()

	// 1. The base image, from scratch.
	stage := filepath.Join(dir, "golang-rootfs")
	depStageGoImage(t, stage, goEnv("GOROOT"))
	ctr := b.run(t, time.Minute, "from", "scratch")
	b.run(t, 5*time.Minute, "copy", ctr, stage+"/", "/")
	b.run(t, time.Minute, "config",
		"--env", "PATH=/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"--env", "GOPATH=/go", "--env", "GOLANG_VERSION="+strings.TrimPrefix(goEnv("GOVERSION"), "go"),
		"--env", "GOTOOLCHAIN=local", "--workingdir", "/go", ctr)
	b.run(t, 5*time.Minute, "commit", "--rm", ctr, "docker.io/library/golang:1.26-bookworm")
	if err := os.RemoveAll(stage); err != nil {
		t.Fatal(err)
	}

	// 2. The image, as the Dockerfile says, offline.
	const image = "localhost/webswarm:e2e"
	proxy := "file:///goproxy," + goEnv("GOPROXY")
	args := []string{"bud", "--pull=false", "--isolation", "chroot", "--layers=false",
		"-v", filepath.Join(goEnv("GOMODCACHE"), "cache", "download") + ":/goproxy:ro",
		"--build-arg", "GOPROXY=" + proxy, "-t", image}
	if gc := goEnv("GOCACHE"); gc != "" && gc != "off" {
		args = append(args, "-v", gc+":/root/.cache/go-build")
	}
	if f := goEnv("GOFLAGS"); f != "" {
		args = append(args, "--build-arg", "GOFLAGS="+f)
	}
	start := time.Now()
	ctxDir := depContext(t, testenv.RepoRoot(t), filepath.Join(dir, "context"))
	b.run(t, 15*time.Minute, append(args, "-f", filepath.Join(ctxDir, "Dockerfile"), ctxDir)...)
	t.Logf("image built in %v", time.Since(start).Round(time.Second))

	// 3. Its configuration.
	var img struct {
		OCIv1 struct {
			Config struct {
				User         string              `json:"User"`
				ExposedPorts map[string]struct{} `json:"ExposedPorts"`
				Volumes      map[string]struct{} `json:"Volumes"`
				Cmd          []string            `json:"Cmd"`
				Entrypoint   []string            `json:"Entrypoint"`
				WorkingDir   string              `json:"WorkingDir"`
			} `json:"config"`
		} `json:"OCIv1"`
	}
	if err := json.Unmarshal([]byte(b.run(t, time.Minute, "inspect", "--type", "image", image)), &img); err != nil {
		t.Fatal(err)
	}
	cfg := img.OCIv1.Config
	if uid, _, _ := strings.Cut(cfg.User, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("image user %q: want a non-root user", cfg.User)
	}
	for _, p := range []string{"6969/tcp", "6969/udp"} {
		if _, ok := cfg.ExposedPorts[p]; !ok {
			t.Errorf("image does not expose %s: %v", p, cfg.ExposedPorts)
		}
	}
	if _, ok := cfg.Volumes[cfg.WorkingDir]; !ok || cfg.WorkingDir == "" {
		t.Errorf("working directory %q (where the state file goes) is not a volume: %v", cfg.WorkingDir, cfg.Volumes)
	}
	if len(cfg.Entrypoint) != 0 || len(cfg.Cmd) == 0 || filepath.Base(cfg.Cmd[0]) != "tracker" {
		t.Errorf("entrypoint %q cmd %q: want the tracker as the default command", cfg.Entrypoint, cfg.Cmd)
	}
	size := b.run(t, time.Minute, "images", "--format", "{{.Size}}", image)
	t.Logf("image %s: %s", image, size)

	// 4. Its files: static binaries, no shell, the state directory owned by the image's user.
	ctr = b.run(t, time.Minute, "from", "--pull=false", image)
	rootfs := b.run(t, time.Minute, "mount", ctr)
	uid, _ := strconv.Atoi(strings.SplitN(cfg.User, ":", 2)[0])
	for _, p := range []string{"usr/local/bin/tracker", "usr/local/bin/seedctl"} {
		if err := depStatic(filepath.Join(rootfs, p)); err != nil {
			t.Error(err)
		}
	}
	for _, p := range []string{"bin/sh", "usr/bin/sh", "bin/busybox"} {
		if _, err := os.Lstat(filepath.Join(rootfs, p)); err == nil {
			t.Errorf("the image has /%s: want the binaries alone", p)
		}
	}
	if st, err := os.Stat(filepath.Join(rootfs, cfg.WorkingDir)); err != nil {
		t.Error(err)
	} else if owner := int(st.Sys().(*syscall.Stat_t).Uid); owner != uid {
		t.Errorf("%s is owned by uid %d, the image runs as %d: the state file cannot be written", cfg.WorkingDir, owner, uid)
	}
	b.run(t, time.Minute, "umount", ctr)

	// 5. Both programs run in it.
	for _, prog := range []string{"tracker", "seedctl"} {
		out := b.run(t, time.Minute, "run", "--isolation", "chroot", ctr, "--", prog, "--help")
		if !strings.Contains(out, prog) {
			t.Errorf("%s --help in the image:\n%s", prog, out)
		}
	}

	// 6. The tracker serves: chroot isolation shares the host's network, so it listens on
	// this loopback port; its defaults put the state file in the volume.
	port := testenv.FreePort(t, "127.0.0.1")
	runCtx, cancelRun := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancelRun()
	p := testenv.StartCmd(t, b.cmd(runCtx, "run", "--isolation", "chroot", ctr, "--", "tracker",
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--nat_check", "0", "--save_dfile_interval", "1"))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	testenv.WaitFor(t, time.Minute, "the tracker in the image to answer /healthz", func() error {
		if done, err := p.Exited(); done {
			t.Fatalf("buildah run tracker exited (%v):\n%s", err, testenv.Tail([]byte(p.Output()), 4000))
		}
		_, err := trackerGet(base + "/healthz")
		return err
	})
	ih := [20]byte{1, 2, 3}
	if _, err := announce(base+"/announce", announceQuery(ih, "-WS0001-container001", 6881, 0)); err != nil {
		t.Fatalf("announce to the tracker in the image: %v", err)
	}
	pid := depFindProcess(t, p.Cmd.Process.Pid, "tracker")
	if got := depProcUID(t, pid); got != uid {
		t.Errorf("tracker runs as uid %d, want the image's %d", got, uid)
	}
	// The tracker's working directory, seen through /proc: it is mounted in buildah's own
	// mount namespace, not in this one.
	cwd := fmt.Sprintf("/proc/%d/cwd", pid)
	testenv.WaitFor(t, 30*time.Second, "the state file in the volume", func() error {
		st, err := os.Stat(filepath.Join(cwd, "tracker-state.bencode"))
		if err != nil {
			return err
		}
		if owner := int(st.Sys().(*syscall.Stat_t).Uid); owner != uid {
			return fmt.Errorf("state file owned by uid %d, want %d", owner, uid)
		}
		return nil
	})
	// SIGTERM to the tracker itself (buildah run answers its own SIGTERM with SIGKILL to the
	// container): it saves and exits 0, and so does buildah run.
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("tracker in the image still running 30 s after SIGTERM:\n%s", testenv.Tail([]byte(p.Output()), 4000))
	}
	if _, err := p.Exited(); err != nil {
		t.Errorf("buildah run tracker: %v after SIGTERM:\n%s", err, testenv.Tail([]byte(p.Output()), 4000))
	}
	t.Logf("container test: %v in all", time.Since(total).Round(time.Second))
}

// depContext returns the build context: the files git tracks, as they are in the working
// tree (what a clone builds, with uncommitted edits to those files), copied into dst — so
// that untracked work in progress in the checkout neither breaks nor slips into the image.
// Outside a git checkout it is root itself.
func depContext(t *testing.T, root, dst string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Logf("git ls-files: %v: the build context is %s as it is", err, root)
		return root
	}
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, f)
		if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err := depCopyFile(src, filepath.Join(dst, f)); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// depStageGoImage lays out the base image's files in dir: the Go toolchain at /usr/local/go
// (hard links into goroot where possible; without the toolchain's own sources, tests and
// documents, which building a program does not read), /bin/sh and the coreutils the
// Dockerfile's RUN lines use with the libraries they load, CA certificates, /tmp, /go and a
// root user with a home.
func depStageGoImage(t *testing.T, dir, goroot string) {
	t.Helper()
	skip := map[string]bool{"src/cmd": true, "test": true, "api": true, "doc": true, "misc": true}
	dst := filepath.Join(dir, "usr", "local", "go")
	err := filepath.WalkDir(goroot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(goroot, path)
		if skip[filepath.ToSlash(rel)] || d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		default:
			if os.Link(path, target) == nil {
				return nil
			}
			return depCopyFile(path, target)
		}
	})
	if err != nil {
		t.Fatalf("stage GOROOT: %v", err)
	}

	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	tools := map[string]string{"/bin/sh": sh}
	for _, name := range []string{"mkdir", "cp", "chown", "chmod", "rm", "ls", "cat", "env", "ln"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s for the base image: %v", name, err)
		}
		tools["/usr/bin/"+name] = p
	}
	libs := map[string]bool{}
	for to, from := range tools {
		if err := depCopyFile(from, filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
		for _, l := range depLibraries(t, from) {
			libs[l] = true
		}
	}
	for l := range libs {
		if err := depCopyFile(l, filepath.Join(dir, l)); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"etc", "tmp", "go", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":  "root:x:0:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		if err := depCopyFile("/etc/ssl/certs/ca-certificates.crt", filepath.Join(dir, "etc/ssl/certs/ca-certificates.crt")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
}

// depLibraries lists the shared libraries (and the loader) program loads, from ldd.
func depLibraries(t *testing.T, program string) []string {
	t.Helper()
	out, err := exec.Command("ldd", program).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", program, err)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0])
		}
	}
	return libs
}

// depCopyFile copies the file at src (following links) to dst, creating dst's directory.
func depCopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// depStatic checks that path is an ELF executable that loads no shared library.
func depStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s: dynamically linked (has an interpreter)", path)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return fmt.Errorf("%s: needs %v", path, libs)
	}
	return nil
}

// depFindProcess returns the PID of the process named comm in process group pgid (the
// group testenv.StartCmd gave buildah run and what it started).
func depFindProcess(t *testing.T, pgid int, comm string) int {
	t.Helper()
	var pid int
	testenv.WaitFor(t, 10*time.Second, comm+" in process group "+strconv.Itoa(pgid), func() error {
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return err
		}
		for _, e := range entries {
			n, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if err != nil {
				continue
			}
			s := string(stat)
			open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
			if open < 0 || closing < open {
				continue
			}
			// After "(comm) ": state ppid pgrp ...
			f := strings.Fields(s[closing+1:])
			if len(f) > 2 && s[open+1:closing] == comm && f[2] == strconv.Itoa(pgid) {
				pid = n
				return nil
			}
		}
		return fmt.Errorf("no %s process", comm)
	})
	return pid
}

// depProcUID returns the real UID of process pid.
func depProcUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				uid, err := strconv.Atoi(f[0])
				if err != nil {
					t.Fatal(err)
				}
				return uid
			}
		}
	}
	t.Fatalf("/proc/%d/status: no Uid line", pid)
	return -1
}
