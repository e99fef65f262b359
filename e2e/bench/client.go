package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// maxMsgSize matches the kubelet's CRI client limit, so large lists fit.
const maxMsgSize = 16 << 20

// Client is one CRI connection (runtime and image services) on a socket.
type Client struct {
	Socket string
	RT     runtimeapi.RuntimeServiceClient
	Img    runtimeapi.ImageServiceClient

	conn       *grpc.ClientConn
	rpcTimeout time.Duration
}

// Dial connects to socket (a path or unix:// address) and checks that it
// answers Version within rpcTimeout. The caller closes the Client.
func Dial(ctx context.Context, socket string, rpcTimeout time.Duration) (*Client, string, error) {
	path := strings.TrimPrefix(socket, "unix://")
	conn, err := grpc.NewClient("unix://"+path,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize)))
	if err != nil {
		return nil, "", fmt.Errorf("connecting to %s: %w", socket, err)
	}
	c := &Client{Socket: path, RT: runtimeapi.NewRuntimeServiceClient(conn), Img: runtimeapi.NewImageServiceClient(conn),
		conn: conn, rpcTimeout: rpcTimeout}
	cctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	v, err := c.RT.Version(cctx, &runtimeapi.VersionRequest{})
	if err != nil {
		conn.Close()
		return nil, "", fmt.Errorf("asking %s for its version: %w", socket, err)
	}
	return c, v.GetRuntimeName() + " " + v.GetRuntimeVersion(), nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// timed runs one RPC under the per-call timeout, records its client-side
// wall time under call in s when it succeeds, and returns that time.
func (c *Client) timed(ctx context.Context, s *Samples, call string, rpc func(context.Context) error) (time.Duration, error) {
	cctx, cancel := context.WithTimeout(ctx, c.rpcTimeout)
	defer cancel()
	start := time.Now()
	err := rpc(cctx)
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", call, err)
	}
	if s != nil {
		s.Add(call, took)
	}
	return took, nil
}

// ensureImage pulls image unless the runtime already has it.
func (c *Client) ensureImage(ctx context.Context, image string) error {
	spec := &runtimeapi.ImageSpec{Image: image}
	cctx, cancel := context.WithTimeout(ctx, c.rpcTimeout)
	defer cancel()
	st, err := c.Img.ImageStatus(cctx, &runtimeapi.ImageStatusRequest{Image: spec})
	if err == nil && st.GetImage() != nil {
		return nil
	}
	if _, err := c.Img.PullImage(cctx, &runtimeapi.PullImageRequest{Image: spec}); err != nil {
		return fmt.Errorf("pulling %s: %w", image, err)
	}
	return nil
}
