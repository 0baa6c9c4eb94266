package data

import "math"

// vec3 is a point or direction in the CLEVR world: x and y span the ground, z points up.
type vec3 struct{ X, Y, Z float64 }

func (a vec3) add(b vec3) vec3             { return vec3{a.X + b.X, a.Y + b.Y, a.Z + b.Z} }
func (a vec3) sub(b vec3) vec3             { return vec3{a.X - b.X, a.Y - b.Y, a.Z - b.Z} }
func (a vec3) scale(s float64) vec3        { return vec3{a.X * s, a.Y * s, a.Z * s} }
func (a vec3) mul(b vec3) vec3             { return vec3{a.X * b.X, a.Y * b.Y, a.Z * b.Z} }
func (a vec3) dot(b vec3) float64          { return a.X*b.X + a.Y*b.Y + a.Z*b.Z }
func (a vec3) length() float64             { return math.Sqrt(a.dot(a)) }
func (a vec3) norm() vec3                  { return a.scale(1 / a.length()) }
func (a vec3) madd(b vec3, s float64) vec3 { return vec3{a.X + b.X*s, a.Y + b.Y*s, a.Z + b.Z*s} }
func (a vec3) cross(b vec3) vec3 {
	return vec3{a.Y*b.Z - a.Z*b.Y, a.Z*b.X - a.X*b.Z, a.X*b.Y - a.Y*b.X}
}

// reflect mirrors direction d about the unit normal n.
func reflect(d, n vec3) vec3 { return d.sub(n.scale(2 * d.dot(n))) }
