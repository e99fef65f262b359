// Command testhelper is a static multi-call program that Arbor's e2e images
// install under several names. The applet is chosen from the base name of the
// executable (/proc/self/exe), then of argv[0], then from argv[1]:
//
//	nginx, httpd, webserver  minimal HTTP server (see web.go)
//	nnp                      prints "Effective uid: N" (installed setuid root)
//	pgrep                    busybox-compatible subset of pgrep
//	ipcs                     busybox-compatible subset of ipcs
//
// It uses only the standard library and is built with CGO_ENABLED=0 by
// fixture.BuildImages.
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// applet runs one personality with its argv (argv[0] included) and returns
// the exit status.
type applet func(argv []string) int

var applets = map[string]applet{
	"nginx":     runWebServer,
	"httpd":     runWebServer,
	"webserver": runWebServer,
	"nnp":       runNNP,
	"pgrep":     runPgrep,
	"ipcs":      runIpcs,
}

func main() {
	run, argv := pickApplet(os.Args)
	if run == nil {
		fmt.Fprintln(os.Stderr, "testhelper: unknown applet; install as nginx, httpd, webserver, nnp, pgrep or ipcs")
		os.Exit(127)
	}
	os.Exit(run(argv))
}

// pickApplet finds the applet for this invocation and the argv it receives.
func pickApplet(args []string) (applet, []string) {
	if exe, err := os.Executable(); err == nil {
		if run, ok := applets[filepath.Base(exe)]; ok {
			return run, args
		}
	}
	if len(args) > 0 {
		if run, ok := applets[filepath.Base(args[0])]; ok {
			return run, args
		}
	}
	if len(args) > 1 {
		if run, ok := applets[args[1]]; ok {
			return run, args[1:]
		}
	}
	return nil, nil
}

// runNNP prints the effective uid, so a setuid-root copy shows whether
// no_new_privs was honoured.
func runNNP(_ []string) int {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
	return 0
}
