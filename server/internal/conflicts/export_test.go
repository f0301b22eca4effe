package conflicts

// SetScanAlways turns the count-race fast path off (true) or on.
func SetScanAlways(on bool) { scanAlways = on }
