package tests

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// browser returns a headless Chromium's path, or "" when there is none.
// .ci/run installs Debian's chromium and sets LIVEPAXOS_REQUIRE_BROWSER,
// so that CI fails rather than skips without it; elsewhere the browser
// checks are skipped with a note.
func browser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("LIVEPAXOS_REQUIRE_BROWSER") != "" {
		t.Fatal("LIVEPAXOS_REQUIRE_BROWSER is set and no chromium is installed (apt-get install -y chromium)")
	}
	t.Log("no chromium installed: the status page's browser checks are skipped (apt-get install -y chromium)")
	return ""
}

// renderedDOM loads url in headless Chromium, lets its scripts run (their
// fetches included) for up to 1 s of virtual time, and returns the DOM as
// rendered.
func renderedDOM(t *testing.T, chromium, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--user-data-dir="+t.TempDir(), "--virtual-time-budget=1000", "--dump-dom", url)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v", url, err)
	}
	return string(out)
}
