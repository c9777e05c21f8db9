package channel

import (
	"net"
	"sync"
)

// BatchLimit is how many bytes BatchConn gathers before writing: one TLS record's payload.
const BatchLimit = 16 << 10

// BatchConn lets a writer that has several websocket messages ready send them in one write (one
// TLS record, one system call) instead of one each. Between Hold and Flush, writes are gathered
// (and written whenever BatchLimit would be exceeded); otherwise they go straight through. The
// bytes on the wire are the same messages in the same order, so the peer cannot tell.
//
// Writes from other goroutines (a pong, a close) made while a batch is held join the batch and
// leave with it.
type BatchConn struct {
	net.Conn

	mu      sync.Mutex
	holding bool
	buf     []byte
}

// NewBatchConn wraps c.
func NewBatchConn(c net.Conn) *BatchConn { return &BatchConn{Conn: c} }

// Write gathers p while a batch is held, and writes it otherwise.
func (b *BatchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.holding {
		return b.Conn.Write(p)
	}
	if len(b.buf)+len(p) > BatchLimit {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) >= BatchLimit {
			return b.Conn.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// Hold gathers the following writes until Flush.
func (b *BatchConn) Hold() {
	b.mu.Lock()
	b.holding = true
	b.mu.Unlock()
}

// Flush writes what was gathered, under the write deadline last set, and ends the batch.
func (b *BatchConn) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holding = false
	return b.flushLocked()
}

func (b *BatchConn) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(b.buf)
	if cap(b.buf) > BatchLimit {
		b.buf = nil
	} else {
		b.buf = b.buf[:0]
	}
	return err
}

// Unwrap returns the wrapped connection.
func (b *BatchConn) Unwrap() net.Conn { return b.Conn }
