package optim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// Checkpoint format of the AdamW state, little-endian:
//
//	magic "VZADAMW\x00" | version u32 = 1
//	beta1 beta2 eps weight_decay f64 | step i64 | nparams u32
//	per parameter, in first-seen order: name_len u32, name, n u64, m [n]f32, v [n]f32
//	crc32 (IEEE) of every preceding byte
//
// The moments are stored bit for bit, so load + continue equals an uninterrupted run exactly.
const (
	adamwMagic   = "VZADAMW\x00"
	adamwVersion = 1
)

// MarshalBinary encodes the configuration, step count and moments.
func (o *AdamW) MarshalBinary() ([]byte, error) {
	size := len(adamwMagic) + 4 + 4*8 + 8 + 4 + 4
	for _, name := range o.order {
		size += 4 + len(name) + 8 + 8*len(o.state[name].m)
	}
	le := binary.LittleEndian
	b := make([]byte, 0, size) // one allocation: the moments of a large adapter are tens of millions of values
	b = append(b, adamwMagic...)
	b = le.AppendUint32(b, adamwVersion)
	for _, f := range []float64{o.cfg.Beta1, o.cfg.Beta2, o.cfg.Eps, o.cfg.WeightDecay} {
		b = le.AppendUint64(b, math.Float64bits(f))
	}
	b = le.AppendUint64(b, uint64(o.step))
	b = le.AppendUint32(b, uint32(len(o.order)))
	for _, name := range o.order {
		st := o.state[name]
		b = le.AppendUint32(b, uint32(len(name)))
		b = append(b, name...)
		b = le.AppendUint64(b, uint64(len(st.m)))
		for _, buf := range [][]float32{st.m, st.v} {
			for _, x := range buf {
				b = le.AppendUint32(b, math.Float32bits(x))
			}
		}
	}
	return le.AppendUint32(b, crc32.ChecksumIEEE(b)), nil
}

// UnmarshalBinary replaces o's configuration and state with the encoded ones. Corrupt, truncated
// or foreign data is an error and leaves o unchanged.
func (o *AdamW) UnmarshalBinary(data []byte) error {
	restored, err := decodeAdamW(data)
	if err != nil {
		return fmt.Errorf("adamw state: %w", err)
	}
	*o = *restored
	return nil
}

// stateReader reads little-endian fields and remembers the first short read.
type stateReader struct {
	buf []byte
	err error
}

func (r *stateReader) next(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.buf)) {
		r.err = errors.New("truncated data")
		return nil
	}
	out := r.buf[:n]
	r.buf = r.buf[n:]
	return out
}

func (r *stateReader) u32() uint32 {
	if b := r.next(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *stateReader) u64() uint64 {
	if b := r.next(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func decodeAdamW(data []byte) (*AdamW, error) {
	if len(data) < len(adamwMagic)+4+4 {
		return nil, fmt.Errorf("%d bytes is too short", len(data))
	}
	if string(data[:len(adamwMagic)]) != adamwMagic {
		return nil, errors.New("not an AdamW state (bad magic)")
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if got := crc32.ChecksumIEEE(body); got != sum {
		return nil, fmt.Errorf("checksum mismatch (stored %08x, computed %08x): file corrupt", sum, got)
	}
	r := &stateReader{buf: body[len(adamwMagic):]}
	if v := r.u32(); v != adamwVersion {
		return nil, fmt.Errorf("version %d, this build reads version %d", v, adamwVersion)
	}
	var cfg AdamWConfig
	cfg.Beta1 = math.Float64frombits(r.u64())
	cfg.Beta2 = math.Float64frombits(r.u64())
	cfg.Eps = math.Float64frombits(r.u64())
	cfg.WeightDecay = math.Float64frombits(r.u64())
	step := int64(r.u64())
	nparams := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if step < 0 {
		return nil, fmt.Errorf("negative step %d", step)
	}
	o := &AdamW{cfg: cfg, step: step, state: map[string]*moments{}}
	for i := uint32(0); i < nparams; i++ {
		name := string(r.next(uint64(r.u32())))
		n := r.u64()
		if r.err != nil {
			return nil, fmt.Errorf("parameter %d: %w", i, r.err)
		}
		// Check the size before allocating, so a corrupt length cannot ask for terabytes.
		if n > uint64(len(r.buf))/8 {
			return nil, fmt.Errorf("parameter %q: %d elements but only %d bytes left (truncated or corrupt)", name, n, len(r.buf))
		}
		if name == "" {
			return nil, fmt.Errorf("parameter %d has an empty name", i)
		}
		if _, dup := o.state[name]; dup {
			return nil, fmt.Errorf("parameter %q stored twice", name)
		}
		st := &moments{m: make([]float32, n), v: make([]float32, n)}
		for _, buf := range [][]float32{st.m, st.v} {
			raw := r.next(4 * n)
			for j := range buf {
				buf[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
			}
		}
		o.order = append(o.order, name)
		o.state[name] = st
	}
	if len(r.buf) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(r.buf))
	}
	if step > 0 && nparams == 0 {
		return nil, fmt.Errorf("step %d but no parameter state", step)
	}
	return o, nil
}
