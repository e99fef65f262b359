package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lmittmann/tint"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/grpclog"
	"k8s.io/klog/v2"
)

// newLogger builds the daemon's logger on stderr: tint text (coloured only
// on a terminal) or JSON. klog and gRPC's logger are routed into it with
// their Info lines demoted to Debug.
func newLogger(format string, level *slog.LevelVar) *slog.Logger {
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	} else {
		h = tint.NewHandler(os.Stderr, &tint.Options{
			Level: level, TimeFormat: time.StampMilli, NoColor: !isTerminal(os.Stderr),
		})
	}
	log := slog.New(h)
	quiet := slog.New(demote{h})
	klog.SetSlogLogger(quiet.With("component", "klog"))
	grpclog.SetLoggerV2(grpcLogger{quiet.With("component", "grpc")})
	// containers/storage, containers/image and the NRI library log
	// through logrus.
	logrus.SetOutput(io.Discard)
	logrus.SetLevel(logrus.InfoLevel)
	logrus.AddHook(logrusHook{quiet.With("component", "lib")})
	return log
}

// logrusHook sends logrus entries to slog, their fields as attributes.
type logrusHook struct{ log *slog.Logger }

func (logrusHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h logrusHook) Fire(e *logrus.Entry) error {
	level := slog.LevelDebug
	switch {
	case e.Level <= logrus.ErrorLevel:
		level = slog.LevelError
	case e.Level == logrus.WarnLevel:
		level = slog.LevelWarn
	case e.Level == logrus.InfoLevel:
		level = slog.LevelInfo
	}
	attrs := make([]any, 0, 2*len(e.Data))
	for k, v := range e.Data {
		attrs = append(attrs, k, v)
	}
	h.log.Log(context.Background(), level, e.Message, attrs...)
	return nil
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// demote turns Info records into Debug ones, for chatty libraries.
type demote struct{ slog.Handler }

func (d demote) Enabled(ctx context.Context, l slog.Level) bool {
	if l == slog.LevelInfo {
		l = slog.LevelDebug
	}
	return d.Handler.Enabled(ctx, l)
}

func (d demote) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo {
		r.Level = slog.LevelDebug
	}
	return d.Handler.Handle(ctx, r)
}

func (d demote) WithAttrs(as []slog.Attr) slog.Handler { return demote{d.Handler.WithAttrs(as)} }
func (d demote) WithGroup(n string) slog.Handler       { return demote{d.Handler.WithGroup(n)} }

// grpcLogger adapts slog to grpclog.LoggerV2.
type grpcLogger struct{ l *slog.Logger }

func (g grpcLogger) Info(args ...any)                 { g.l.Info(fmt.Sprint(args...)) }
func (g grpcLogger) Infoln(args ...any)               { g.l.Info(fmt.Sprint(args...)) }
func (g grpcLogger) Infof(format string, args ...any) { g.l.Info(fmt.Sprintf(format, args...)) }
func (g grpcLogger) Warning(args ...any)              { g.l.Warn(fmt.Sprint(args...)) }
func (g grpcLogger) Warningln(args ...any)            { g.l.Warn(fmt.Sprint(args...)) }
func (g grpcLogger) Warningf(format string, args ...any) {
	g.l.Warn(fmt.Sprintf(format, args...))
}
func (g grpcLogger) Error(args ...any)                 { g.l.Error(fmt.Sprint(args...)) }
func (g grpcLogger) Errorln(args ...any)               { g.l.Error(fmt.Sprint(args...)) }
func (g grpcLogger) Errorf(format string, args ...any) { g.l.Error(fmt.Sprintf(format, args...)) }

// Fatal* are logged as errors; gRPC's own code does not call them, and a
// library must not end the daemon.
func (g grpcLogger) Fatal(args ...any)                 { g.l.Error(fmt.Sprint(args...)) }
func (g grpcLogger) Fatalln(args ...any)               { g.l.Error(fmt.Sprint(args...)) }
func (g grpcLogger) Fatalf(format string, args ...any) { g.l.Error(fmt.Sprintf(format, args...)) }
func (g grpcLogger) V(l int) bool                      { return l <= 0 }
