package orders

// ForOwner returns the snapshot limited to the skus of one owner (owns
// reports whether a sku is the owner's): the payload of the owner's
// retained availability topic, of the availability webhook of endpoints
// bound to the owner, and of the channel's availability asked by the
// owner's token (docs/DESIGN.md, "Owners").
func (sn Snapshot) ForOwner(owner string, owns func(sku string) bool) Snapshot {
	items := make([]Item, 0, len(sn.Items))
	for _, it := range sn.Items {
		if owns(it.SKU) {
			items = append(items, it)
		}
	}
	sn.Items, sn.Owner = items, owner
	return sn
}
