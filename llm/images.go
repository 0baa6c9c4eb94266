package llm

import (
	"crypto/sha256"
	"encoding/hex"
)

// ImageKey is the cache key of an image: the hex SHA-256 of its bytes.
func ImageKey(image []byte) string {
	h := sha256.Sum256(image)
	return hex.EncodeToString(h[:])
}

// imageCache keeps the projector's output rows per image chunk, least recently used out first.
// Encoding an image is the expensive part of a multimodal prompt, and the same images are shown
// many times during self-play.
type imageCache struct {
	max   int
	rows  map[string][]float32
	order []string // least recently used first
}

func newImageCache(max int) *imageCache {
	return &imageCache{max: max, rows: map[string][]float32{}}
}

func (c *imageCache) get(key string) ([]float32, bool) {
	r, ok := c.rows[key]
	if ok {
		c.touch(key)
	}
	return r, ok
}

func (c *imageCache) put(key string, rows []float32) {
	if _, ok := c.rows[key]; !ok && len(c.rows) >= c.max {
		delete(c.rows, c.order[0])
		c.order = c.order[1:]
	}
	c.rows[key] = rows
	c.touch(key)
}

func (c *imageCache) touch(key string) {
	for i, k := range c.order {
		if k == key {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
	c.order = append(c.order, key)
}

// ImageEmbedding returns the cached projector rows of an image chunk by the key of its
// ImageSpan, if they are still cached (the span itself always carries them).
func (m *Model) ImageEmbedding(key string) ([]float32, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.images.get(key)
}
