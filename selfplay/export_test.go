package selfplay

// Test helpers of package selfplay that its external test package (selfplay_test) uses too.
var WriteSolidPNG = writeSolidPNG
