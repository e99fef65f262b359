package cri

import (
	"bytes"
	"context"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/arbor-cri/arbor/store"
)

// createTimeout bounds a create that goes on after its client gave up.
const createTimeout = 4 * time.Minute

// parkWindow is how long a finished create whose client went away waits
// for the kubelet's identical retry before it is removed.
const parkWindow = 2 * time.Minute

// parkingLot keeps pods and containers whose create finished after the
// client's deadline. The kubelet retries such a call with the same request;
// the retry gets the finished object instead of a name conflict. A retry
// that differs, or none within the window, removes the object.
type parkingLot struct {
	mu   sync.Mutex
	cars map[string]*parkedCar // by kind and reserved name; guarded by mu
}

type parkedCar struct {
	id      string
	request []byte
	timer   *time.Timer
}

// park lists the object (list adds it to its index) and parks it, in one
// step under the lot's lock: a retry that can see the object can also
// claim it, and one that comes before gets a name conflict as during the
// create.
func (l *parkingLot) park(key, id string, req proto.Message, list, expire func()) {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	l.mu.Lock()
	defer l.mu.Unlock()
	list()
	if l.cars == nil {
		l.cars = map[string]*parkedCar{}
	}
	l.cars[key] = &parkedCar{id: id, request: b, timer: time.AfterFunc(parkWindow, func() {
		if l.take(key, id) {
			expire()
		}
	})}
}

// claim takes the car parked under key. It reports the object's ID and
// whether req is the same request that made it.
func (l *parkingLot) claim(key string, req proto.Message) (id string, same, found bool) {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	l.mu.Lock()
	defer l.mu.Unlock()
	car, ok := l.cars[key]
	if !ok {
		return "", false, false
	}
	car.timer.Stop()
	delete(l.cars, key)
	return car.id, bytes.Equal(car.request, b), true
}

// take removes the car of id under key, if it is still there.
func (l *parkingLot) take(key, id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if car, ok := l.cars[key]; ok && car.id == id {
		delete(l.cars, key)
		return true
	}
	return false
}

// close stops the timers; parked objects stay, as real objects.
func (l *parkingLot) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for key, car := range l.cars {
		car.timer.Stop()
		delete(l.cars, key)
	}
}

// Close stops background work of the RuntimeServer.
func (s *RuntimeServer) Close() { s.parking.close() }

// detach returns a context for the work of a create: it carries the
// request's values but not its cancellation, so a create the client gave
// up on still finishes (and is parked), within createTimeout.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
}

// parkPod lists a pod whose client went away and keeps it for the retry;
// unclaimed, it is removed. It logs once the pod can be claimed.
func (s *RuntimeServer) parkPod(ctx context.Context, p store.Pod, req proto.Message) {
	s.parking.park("pod/"+p.Name, p.ID, req, func() { s.Store.Pods.Add(p.ID, p) },
		func() { s.removeUnclaimedPod(p.ID) })
	Logger(ctx).Warn("Client gave up before the pod was ready; keeping it for a retry",
		"pod_sandbox_id", p.ID, "window", parkWindow)
}

// parkContainer lists a container whose client went away and keeps it
// for the retry, as parkPod does.
func (s *RuntimeServer) parkContainer(ctx context.Context, c store.Container, req proto.Message) {
	s.parking.park("container/"+c.Name, c.ID, req, func() { s.Store.Containers.Add(c.ID, c) },
		func() { s.removeUnclaimedContainer(c.ID) })
	Logger(ctx).Warn("Client gave up before the container was created; keeping it for a retry",
		"container_id", c.ID, "window", parkWindow)
}

func (s *RuntimeServer) removeUnclaimedPod(id string) {
	removeUnclaimed(s, s.Store.Pods, id, s.removePod)
}

func (s *RuntimeServer) removeUnclaimedContainer(id string) {
	removeUnclaimed(s, s.Store.Containers, id, s.removeContainer)
}

// removeUnclaimed removes a parked object nobody claimed, under its
// operation lock and a fresh bounded context.
func removeUnclaimed[T any](s *RuntimeServer, x *store.Index[T], id string, remove func(context.Context, *store.Entry[T]) error) {
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	e, err := x.Lookup(id)
	if err != nil {
		return
	}
	e.Op.Lock()
	defer e.Op.Unlock()
	if e.Removed() {
		return
	}
	if err := remove(ctx, e); err != nil {
		s.log.Warn("Cannot remove unclaimed object", "id", id, "error", err)
		return
	}
	s.log.Info("Unclaimed object removed", "id", id)
}
