package tests

import (
	"os"
	"os/exec"
	"testing"
)

// extraProc is a livepaxos process a test starts outside its testCluster;
// the test's cleanup kills it, by its PID, and waits for it.
type extraProc struct {
	cmd     *exec.Cmd
	logPath string
}

// startProcess starts bin with args, its output in logPath.
func startProcess(t *testing.T, bin, logPath string, args ...string) *extraProc {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	return &extraProc{cmd: cmd, logPath: logPath}
}

// tail is the last n lines of the process's output.
func (p *extraProc) tail(n int) string { return tail(p.logPath, n) }
