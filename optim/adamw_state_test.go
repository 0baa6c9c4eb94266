package optim

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"
)

func trainedState(t testing.TB) []byte {
	opt, err := NewAdamW(DefaultAdamW())
	if err != nil {
		t.Fatal(err)
	}
	params := newParams()
	rng := rand.New(rand.NewPCG(5, 6))
	for s := 0; s < 3; s++ {
		randomGrads(rng, params)
		if err := opt.Step(params, 1e-3); err != nil {
			t.Fatal(err)
		}
	}
	data, err := opt.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// resealed replaces the trailing checksum so that a deliberate edit reaches the field checks.
func resealed(body []byte) []byte {
	out := append([]byte(nil), body...)
	return binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(out))
}

func TestAdamWStateRoundTrip(t *testing.T) {
	data := trainedState(t)
	var opt AdamW
	if err := opt.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	again, err := opt.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, again) {
		t.Errorf("marshal(unmarshal(x)) != x")
	}
	// Header (8+4) + config (32) + step (8) + count (4) + two tensors of 37 and 5 elements with
	// names of 26 bytes + crc.
	want := 8 + 4 + 32 + 8 + 4 + 2*(4+26+8) + 8*(37+5) + 4
	if len(data) != want {
		t.Errorf("size %d bytes, want %d", len(data), want)
	}
}

func TestAdamWStateCorrupt(t *testing.T) {
	good := trainedState(t)
	body := good[:len(good)-4]
	// Offset of the first parameter's element count: header, config, step, count, name length,
	// name.
	countAt := 8 + 4 + 32 + 8 + 4 + 4 + 26
	tests := []struct {
		name string
		data func() []byte
		want string
	}{
		{"empty", func() []byte { return nil }, "too short"},
		{"bad magic", func() []byte { d := append([]byte(nil), good...); d[0] = 'X'; return d }, "bad magic"},
		{"flipped bit", func() []byte { d := append([]byte(nil), good...); d[100] ^= 1; return d }, "checksum mismatch"},
		{"truncated", func() []byte { return resealed(body[:len(body)-10]) }, "truncated"},
		{"trailing bytes", func() []byte { return resealed(append(append([]byte(nil), body...), 0, 0)) }, "trailing bytes"},
		{"version", func() []byte {
			d := append([]byte(nil), body...)
			binary.LittleEndian.PutUint32(d[8:], 99)
			return resealed(d)
		}, "version 99"},
		{"huge tensor", func() []byte {
			d := append([]byte(nil), body...)
			binary.LittleEndian.PutUint64(d[countAt:], 1<<60)
			return resealed(d)
		}, "elements but only"},
		{"bad beta", func() []byte {
			d := append([]byte(nil), body...)
			binary.LittleEndian.PutUint64(d[12:], 0x3ff0000000000000) // beta1 = 1.0
			return resealed(d)
		}, "beta1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt, _ := NewAdamW(DefaultAdamW())
			before, _ := opt.MarshalBinary()
			err := opt.UnmarshalBinary(tc.data())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if after, _ := opt.MarshalBinary(); !bytes.Equal(before, after) {
				t.Errorf("a failed load changed the optimizer")
			}
		})
	}
}

// Any byte string, checksum fixed up so the parser proper is exercised, must give an error or
// a state that re-encodes to the same bytes: never a panic or a huge allocation.
func FuzzAdamWUnmarshal(f *testing.F) {
	good := trainedState(f)
	f.Add(good[:len(good)-4])
	f.Add([]byte(adamwMagic))
	empty, _ := NewAdamW(DefaultAdamW())
	e, _ := empty.MarshalBinary()
	f.Add(e[:len(e)-4])
	f.Fuzz(func(t *testing.T, body []byte) {
		data := resealed(body)
		var opt AdamW
		if err := opt.UnmarshalBinary(data); err != nil {
			return
		}
		again, err := opt.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("accepted state does not re-encode to itself")
		}
	})
}
