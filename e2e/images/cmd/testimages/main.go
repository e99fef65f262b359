// Command testimages builds Arbor's e2e test images (see package
// e2e/fixture) and pushes them to a plain-HTTP registry on loopback, then
// prints one line per reference: the reference and its manifest digest.
//
//	testimages -registry 127.0.0.1:5000 [-only ref,ref] [-user U -password P] [-v]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/arbor-cri/arbor/e2e/fixture"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "testimages: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("testimages", flag.ContinueOnError)
	fs.SetOutput(stderr)
	registry := fs.String("registry", "127.0.0.1:5000", "registry host:port to push to (plain HTTP)")
	only := fs.String("only", "", "comma-separated references (path:tag) to push; default all")
	user := fs.String("user", "", "basic-auth user name")
	password := fs.String("password", "", "basic-auth password")
	verbose := fs.Bool("v", false, "log progress")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := fixture.BuildOptions{Registry: *registry, Username: *user, Password: *password,
		Log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))}
	if *only != "" {
		opts.Refs = strings.Split(*only, ",")
	}
	start := time.Now()
	cat, err := fixture.BuildImagesWith(ctx, opts)
	if err != nil {
		return err
	}
	return printSummary(stdout, cat, time.Since(start))
}

func printSummary(w io.Writer, cat fixture.Catalog, took time.Duration) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "REFERENCE\tMANIFEST DIGEST\tUSER")
	for _, img := range cat.Images {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", cat.Reference(img.Ref), img.Digest, img.Config.User)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := cat.Stats
	_, err := fmt.Fprintf(w, "%d references in %s: %d blobs uploaded (%d bytes), %d mounted, %d present; %d manifests put, %d unchanged\n",
		len(cat.Images), took.Round(time.Millisecond), s.BlobsUploaded, s.BytesUploaded, s.BlobsMounted,
		s.BlobsPresent, s.ManifestsPut, s.ManifestsFound)
	return err
}
