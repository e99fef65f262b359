package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// webOptions configures the web server applet.
type webOptions struct {
	listen  string // address to listen on
	pidFile string // file that receives the pid once listening
	title   string // argv[0] to re-exec with (process title)
	banner  string // line written to stderr at start
	server  string // Server response header
}

const welcomePage = `<!DOCTYPE html>
<html><head><title>Welcome to nginx!</title></head>
<body><h1>Welcome to nginx!</h1><p>Arbor e2e stand-in web server.</p></body>
</html>
`

// runWebServer serves a welcome page on "/" until SIGINT, SIGTERM or SIGQUIT.
// With -title it first re-executes itself so that /proc/self/cmdline starts
// with the title while comm stays the executable's name.
func runWebServer(argv []string) int {
	opts, err := parseWebOptions(argv)
	if err != nil {
		return 2
	}
	if opts.title != "" && argv[0] != opts.title {
		retitle(opts.title, argv)
	}
	if opts.banner != "" {
		fmt.Fprintln(os.Stderr, opts.banner)
	}
	ln, err := net.Listen("tcp", opts.listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "webserver: listening on %s: %v\n", opts.listen, err)
		return 1
	}
	writePidFile(opts.pidFile)
	go stopOnSignal(opts.pidFile)
	fmt.Fprintf(os.Stderr, "%s: serving on %s as pid %d\n", programName(argv), opts.listen, os.Getpid())
	srv := &http.Server{Handler: welcomeHandler(opts.server), ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "webserver: serving: %v\n", err)
		return 1
	}
	return 0
}

func parseWebOptions(argv []string) (webOptions, error) {
	var o webOptions
	fs := flag.NewFlagSet("webserver", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", ":80", "listen address")
	fs.StringVar(&o.pidFile, "pidfile", "", "pid file written once listening")
	fs.StringVar(&o.title, "title", "", "argv[0] to re-exec with")
	fs.StringVar(&o.banner, "banner", "", "line written to stderr at start")
	fs.StringVar(&o.server, "server", "nginx", "Server response header")
	return o, fs.Parse(argv[1:])
}

// retitle re-executes the program with argv[0] replaced by title. It only
// returns when exec fails; the server then runs under its old title.
func retitle(title string, argv []string) {
	exe, err := os.Executable()
	if err == nil {
		err = syscall.Exec(exe, append([]string{title}, argv[1:]...), os.Environ())
	}
	fmt.Fprintf(os.Stderr, "webserver: re-exec with title: %v\n", err)
}

func writePidFile(path string) {
	if path == "" {
		return
	}
	_ = os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "webserver: writing pid file: %v\n", err)
	}
}

// stopOnSignal exits the process on the first stop signal.
func stopOnSignal(pidFile string) {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT)
	<-signals
	if pidFile != "" {
		_ = os.Remove(pidFile)
	}
	os.Exit(0)
}

// welcomeHandler answers "/" and "/index.html" with 200 and logs every
// request to stdout in common log format.
func welcomeHandler(server string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", server)
		status := http.StatusOK
		if r.URL.Path == "/" || r.URL.Path == "/index.html" {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte(welcomePage))
		} else {
			status = http.StatusNotFound
			http.NotFound(w, r)
		}
		fmt.Printf("%s - - [%s] %q %d\n", r.RemoteAddr, time.Now().UTC().Format("02/Jan/2006:15:04:05 -0700"),
			r.Method+" "+r.URL.RequestURI()+" "+r.Proto, status)
	})
}

// programName is the installed name (nginx, httpd, ...) even after retitle.
func programName(argv []string) string {
	if exe, err := os.Executable(); err == nil {
		return filepath.Base(exe)
	}
	return filepath.Base(argv[0])
}
