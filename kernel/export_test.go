package kernel

// Collect gives the package's tests the unexported stream collector under
// the name they use.
var Collect = collect
