//go:build e2e

package e2e

import (
	"debug/elf"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// deployDir is deploy/ from this package's directory.
const deployDir = "../../deploy"

// TestDeployManifests runs what deploy/ describes, without a container
// runtime: the binaries built with the Dockerfile's own build line must be
// static (the distroless base has no libc); the StatefulSet's container
// args, with the pod's fields filled in as Kubernetes would, must start a
// node as the manifests' non-root user with the cookie file readable only
// through its group, answer the readiness probe and notp-cli, and stop
// cleanly within the pod's termination grace period; and the names that
// tie the manifests together (the Service's SRV name in -meet, the probe's
// port, the Secret's key) must agree.
func TestDeployManifests(t *testing.T) {
	dockerfile := readDeploy(t, "Dockerfile")
	sts := readDeploy(t, "kubernetes/statefulset.yaml")
	svc := readDeploy(t, "kubernetes/service.yaml")

	checkManifestNames(t, sts, svc)
	uid, gid := manifestUser(t, sts, dockerfile)

	// The pod's filesystem: the binaries, the Secret's cookie at
	// /etc/notp/cookie (mode 0440, group fsGroup) and the data volume at
	// /data, here under a directory the node's user can reach.
	root, err := os.MkdirTemp("", "notp-deploy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	asRoot := os.Getuid() == 0
	for _, d := range []string{"bin", "etc", "data"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(root, "bin")
	node := buildAsDockerfile(t, dockerfile, "./examples/node", filepath.Join(bin, "notp-node"))
	cli := buildAsDockerfile(t, dockerfile, "./cmd/notp-cli", filepath.Join(bin, "notp-cli"))
	for _, b := range []string{node, cli} {
		checkStatic(t, b)
	}
	out, err := exec.Command(cli, "keygen").Output()
	if err != nil {
		t.Fatalf("notp-cli keygen: %v", err)
	}
	cookieFile := filepath.Join(root, "etc", "cookie")
	if err := os.WriteFile(cookieFile, out, 0o440); err != nil {
		t.Fatal(err)
	}
	if asRoot {
		// Owned by root, readable by the pod's group only, as the Secret
		// volume's defaultMode 0440 with fsGroup gives it.
		if err := os.Chown(cookieFile, 0, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(filepath.Join(root, "data"), uid, gid); err != nil {
			t.Fatal(err)
		}
	}

	port, metricsPort := freePort(t), freePort(t)
	args := podArgs(t, sts, map[string]string{
		"$(POD_NAME)":      "notp-0",
		"$(POD_IP)":        "127.0.0.1",
		"$(POD_NAMESPACE)": "default",
		"/etc/notp/cookie": cookieFile,
		"/data/":           filepath.Join(root, "data") + "/",
		"-port=7022":       "-port=" + strconv.Itoa(port),
		":9100":            ":" + strconv.Itoa(metricsPort),
	})
	logFile := filepath.Join(root, "node.log")
	logOut, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer logOut.Close()
	cmd := exec.Command(node, args...)
	cmd.Stdout, cmd.Stderr = logOut, logOut
	cmd.Dir = root
	if asRoot {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	} else {
		t.Logf("not root: the node runs as uid %d, not the manifests' %d", os.Getuid(), uid)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("node log:\n%s", b)
		}
	})

	// The readiness probe: GET /metrics on the metrics port.
	probe := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	e := &env{t: t}
	e.eventually("the readiness probe to answer 200", 30*time.Second, func() (bool, string) {
		select {
		case err := <-exited:
			t.Fatalf("the node exited before its readiness probe answered: %v", err)
		default:
		}
		resp, err := http.Get(probe)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})

	// notp-cli reaches it with the Secret's cookie file.
	c := exec.Command(cli, "-I", "notp-0", "-H", "127.0.0.1", "-p", strconv.Itoa(port), "--key-file", cookieFile, "nodes")
	c.Env = append(os.Environ(), "NOTP_COOKIE=")
	if b, err := c.CombinedOutput(); err != nil || !strings.Contains(string(b), `"notp-0"`) {
		t.Fatalf("notp-cli nodes: %v\n%s", err, b)
	}
	if asRoot {
		st, err := os.Stat(filepath.Join(root, "data"))
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := st.Sys().(*syscall.Stat_t); !ok || int(s.Uid) != uid {
			t.Fatalf("data volume owner changed: %+v", st.Sys())
		}
	}

	// Kubernetes stops a pod with SIGTERM and kills it after the grace period.
	grace := manifestInt(t, sts, `terminationGracePeriodSeconds:\s*(\d+)`)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("node exited after SIGTERM with %v", err)
		}
	case <-time.After(time.Duration(grace) * time.Second):
		t.Fatalf("node still running %d s after SIGTERM (the pod's grace period)", grace)
	}
	if _, err := os.Stat(filepath.Join(root, "data", "ring")); err != nil {
		t.Fatalf("no ring state on the data volume after the stop: %v", err)
	}
}

func readDeploy(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// buildAsDockerfile builds pkg with the flags and environment of the
// Dockerfile's go build line for it.
func buildAsDockerfile(t *testing.T, dockerfile, pkg, out string) string {
	t.Helper()
	m := regexp.MustCompile(`go build (.*?) -o \S+ ` + regexp.QuoteMeta(pkg) + `\b`).FindStringSubmatch(dockerfile)
	if m == nil {
		t.Fatalf("the Dockerfile builds no %s", pkg)
	}
	args := append([]string{"build"}, shellWords(m[1])...)
	args = append(args, "-o", out, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = "../.."
	cmd.Env = os.Environ()
	if !strings.Contains(dockerfile, "ENV CGO_ENABLED=0") {
		t.Fatal("the Dockerfile does not build with CGO_ENABLED=0")
	}
	cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out
}

// shellWords splits s at spaces outside double quotes and drops the
// quotes, as the Dockerfile's shell does for the build line's flags.
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	quoted, inWord := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// checkStatic fails unless the ELF file at path needs no dynamic loader
// and no shared library.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("%s is dynamically linked (program header %v)", filepath.Base(path), p.Type)
		}
	}
}

// checkManifestNames checks that the StatefulSet, the Service and the
// node's flags name each other consistently.
func checkManifestNames(t *testing.T, sts, svc string) {
	t.Helper()
	svcName := manifestString(t, svc, `(?m)^metadata:\n\s+name:\s*(\S+)`)
	if got := manifestString(t, sts, `serviceName:\s*(\S+)`); got != svcName {
		t.Errorf("StatefulSet serviceName %q, Service %q", got, svcName)
	}
	if !strings.Contains(svc, "clusterIP: None") {
		t.Error("the Service is not headless (clusterIP: None)")
	}
	portName := manifestString(t, svc, `- name:\s*(\S+)\n\s+port:\s*\d+\n\s+protocol:\s*TCP`)
	wantMeet := fmt.Sprintf("-meet=_%s._tcp.%s.$(POD_NAMESPACE).svc.cluster.local", portName, svcName)
	if !strings.Contains(sts, wantMeet) {
		t.Errorf("the node's -meet is not the Service's SRV name %s", wantMeet)
	}
	probePort := manifestString(t, sts, `readinessProbe:\n\s+httpGet:\n\s+path:\s*/metrics\n\s+port:\s*(\S+)`)
	metricsPort := manifestString(t, sts, `- name:\s*`+regexp.QuoteMeta(probePort)+`\n\s+containerPort:\s*(\d+)`)
	if !strings.Contains(sts, "-metrics=$(POD_IP):"+metricsPort) {
		t.Errorf("the readiness probe's port %s (%s) is not the node's -metrics port", probePort, metricsPort)
	}
	key := manifestString(t, sts, `items:\n\s+- key:\s*(\S+)\n\s+path:\s*cookie`)
	if key != "cookie" || !strings.Contains(sts, "secretName: notp-cookie") {
		t.Errorf("the cookie volume takes key %q of secret notp-cookie?", key)
	}
	if !strings.Contains(sts, "-cookie-file=/etc/notp/cookie") || !strings.Contains(sts, "mountPath: /etc/notp") {
		t.Error("the node's -cookie-file is not the Secret's mount")
	}
}

// manifestUser returns the pod's uid and gid, which must be the
// Dockerfile's USER, not root.
func manifestUser(t *testing.T, sts, dockerfile string) (uid, gid int) {
	t.Helper()
	uid = manifestInt(t, sts, `runAsUser:\s*(\d+)`)
	gid = manifestInt(t, sts, `runAsGroup:\s*(\d+)`)
	if fs := manifestInt(t, sts, `fsGroup:\s*(\d+)`); fs != gid {
		t.Errorf("fsGroup %d, runAsGroup %d", fs, gid)
	}
	if uid == 0 || !strings.Contains(sts, "runAsNonRoot: true") {
		t.Errorf("the pod may run as root (runAsUser %d)", uid)
	}
	if want := fmt.Sprintf("USER %d:%d", uid, gid); !strings.Contains(dockerfile, want) {
		t.Errorf("the Dockerfile has no %q", want)
	}
	return uid, gid
}

// podArgs returns the node container's args with each key of subst
// replaced by its value, as Kubernetes expands $(VAR) from the env.
func podArgs(t *testing.T, sts string, subst map[string]string) []string {
	t.Helper()
	block := manifestString(t, sts, `(?s)\n(\s+)args:\n(.*?)\n\s+ports:`)
	var args []string
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		a, ok := strings.CutPrefix(line, "- ")
		if !ok {
			continue
		}
		for k, v := range subst {
			a = strings.ReplaceAll(a, k, v)
		}
		args = append(args, a)
	}
	if len(args) == 0 {
		t.Fatal("the StatefulSet's container has no args")
	}
	return args
}

func manifestString(t *testing.T, text, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("manifest: nothing matches %s", re)
	}
	return m[len(m)-1]
}

func manifestInt(t *testing.T, text, re string) int {
	t.Helper()
	n, err := strconv.Atoi(manifestString(t, text, re))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
