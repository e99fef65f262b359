package daemon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strconv"

	"github.com/arbor-cri/arbor/config"
	"github.com/arbor-cri/arbor/cri"
	"github.com/arbor-cri/arbor/fault"
	"github.com/arbor-cri/arbor/version"
)

// Info is what GET /info returns.
type Info struct {
	version.Info
	Socket         string   `json:"socket"`
	Root           string   `json:"root"`
	RunRoot        string   `json:"runroot"`
	StorageDriver  string   `json:"storage_driver"`
	StorageRoot    string   `json:"storage_root"`
	CgroupDriver   string   `json:"cgroup_driver"`
	CgroupVersion  int      `json:"cgroup_version"`
	RuntimeHandler []string `json:"runtime_handlers"`
	Pods           int      `json:"pods"`
	Containers     int      `json:"containers"`
	FaultInjection bool     `json:"fault_injection"`
	HandlerPanics  int64    `json:"handler_panics"`
}

// httpHandler serves the HTTP/1 side of the socket.
func (d *Daemon) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /info", d.serveInfo)
	mux.HandleFunc("GET /config", d.serveConfig)
	mux.HandleFunc("GET /tree", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.tree.States().Snapshot())
	})
	mux.HandleFunc("GET /containers/{id}", func(w http.ResponseWriter, r *http.Request) {
		e, err := d.parts.store.Containers.Lookup(r.PathValue("id"))
		if err != nil {
			httpError(w, http.StatusNotFound, "%v", err)
			return
		}
		writeJSON(w, http.StatusOK, e.Get())
	})
	mux.HandleFunc("GET /leaks", func(w http.ResponseWriter, r *http.Request) {
		leaks := d.runtime.Leaks(r.Context())
		if leaks == nil {
			leaks = []cri.Orphan{}
		}
		writeJSON(w, http.StatusOK, leaks)
	})
	if d.faults != nil {
		mux.HandleFunc("POST /debug/fault", d.serveFault)
		mux.HandleFunc("GET /debug/fault", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, d.faults.List())
		})
	}
	if d.config().API.EnableProfileUnixSocket {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func (d *Daemon) serveInfo(w http.ResponseWriter, r *http.Request) {
	cfg := d.config()
	writeJSON(w, http.StatusOK, Info{
		Info:           version.Get(),
		Socket:         cfg.API.Listen,
		Root:           cfg.Root,
		RunRoot:        cfg.RunRoot,
		StorageDriver:  d.parts.images.Driver(),
		StorageRoot:    cfg.StorageRoot(),
		CgroupDriver:   "cgroupfs",
		CgroupVersion:  int(d.parts.host.CgroupVersion),
		RuntimeHandler: handlerNames(cfg),
		Pods:           d.parts.store.Pods.Len(),
		Containers:     d.parts.store.Containers.Len(),
		FaultInjection: d.faults != nil,
		HandlerPanics:  d.boundary.Panics(),
	})
}

func (d *Daemon) serveConfig(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/toml")
	if err := config.Render(d.config(), w); err != nil {
		httpError(w, http.StatusInternalServerError, "rendering config: %v", err)
	}
}

// serveFault arms a fault: POST /debug/fault?target=NAME&mode=MODE&count=N.
func (d *Daemon) serveFault(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	target := q.Get("target")
	if target == "" {
		httpError(w, http.StatusBadRequest, "target is required (a service name, a CRI method or a fault point)")
		return
	}
	mode, err := fault.ParseMode(q.Get("mode"))
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	count := 1
	if c := q.Get("count"); c != "" {
		if count, err = strconv.Atoi(c); err != nil || count < 1 {
			httpError(w, http.StatusBadRequest, "count %q: want a whole number of at least 1", c)
			return
		}
	}
	d.faults.Arm(target, mode, count)
	writeJSON(w, http.StatusOK, fault.Armed{Target: target, Mode: mode.String(), Remaining: count})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// jsonString renders v for a verbose info map.
func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
