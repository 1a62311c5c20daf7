/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Address-range allocator: two AVL trees over inclusive ranges.
 *
 * The free tree holds the maximal free ranges of [base, last], keyed by
 * start address; each node also caches the largest (last - start) of its
 * subtree ("max_span"), so a search never enters a subtree that cannot hold
 * the request.  The alloc tree holds the live allocations, keyed by start.
 * Both use the same node type and the same AVL code.
 *
 * Ranges are stored as [start, last] (inclusive) so a range of 2^64 bytes is
 * representable; sizes are handled as "span" = size - 1 internally.
 *
 * Every mutation first obtains all the nodes it may need (from a small
 * spare list, else malloc), so a failure leaves the allocator unchanged.
 */
#include <cvmm/vm-allocator.h>

#include <errno.h>
#include <stdlib.h>

__extension__ typedef unsigned __int128 u128;

struct range_node {
	uint64_t start;
	uint64_t last;
	/* Largest (last - start) in this subtree, this node included. */
	uint64_t max_span;
	struct range_node *left;
	struct range_node *right;
	/* Unsigned: a NULL child has height 0 and no node has less, which
	 * lets the compiler (and the reader) see that rebalance() only
	 * rotates around a child that exists. */
	unsigned int height;
};

/* Spare nodes kept for reuse instead of returning them to malloc. */
#define SPARE_MAX 64

struct address_allocator {
	uint64_t base;
	uint64_t last;
	struct range_node *free_root;
	struct range_node *alloc_root;
	size_t nfree;
	size_t nalloc;
	u128 allocated;		  /* bytes in live allocations, up to 2^64 */
	struct range_node *spare; /* singly linked through ->right */
	size_t nspare;
};

/* ------------------------------------------------------------ AVL tree */

static unsigned int node_height(const struct range_node *n)
{
	return n ? n->height : 0;
}

static void node_update(struct range_node *n)
{
	unsigned int hl = node_height(n->left), hr = node_height(n->right);
	uint64_t m = n->last - n->start;

	n->height = 1 + (hl > hr ? hl : hr);
	if (n->left && n->left->max_span > m)
		m = n->left->max_span;
	if (n->right && n->right->max_span > m)
		m = n->right->max_span;
	n->max_span = m;
}

static struct range_node *rotate_right(struct range_node *n)
{
	struct range_node *l = n->left;

	n->left = l->right;
	l->right = n;
	node_update(n);
	node_update(l);
	return l;
}

static struct range_node *rotate_left(struct range_node *n)
{
	struct range_node *r = n->right;

	n->right = r->left;
	r->left = n;
	node_update(n);
	node_update(r);
	return r;
}

/* Restore the AVL property at n (children already balanced); returns the
 * new subtree root.  A side taller than the other by two has height >= 2,
 * so it is non-NULL, and so is its taller child that a double rotation
 * turns (heights are unsigned: an empty subtree, height 0, is never taller
 * than anything). */
static struct range_node *rebalance(struct range_node *n)
{
	unsigned int hl = node_height(n->left), hr = node_height(n->right);

	if (hl > hr + 1) {
		if (node_height(n->left->left) < node_height(n->left->right))
			n->left = rotate_left(n->left);
		return rotate_right(n);
	}
	if (hr > hl + 1) {
		if (node_height(n->right->right) < node_height(n->right->left))
			n->right = rotate_right(n->right);
		return rotate_left(n);
	}
	node_update(n);
	return n;
}

/* Insert node (its start must not be in the tree yet). */
static struct range_node *tree_insert(struct range_node *root,
				      struct range_node *node)
{
	if (!root) {
		node->left = NULL;
		node->right = NULL;
		node_update(node);
		return node;
	}
	if (node->start < root->start)
		root->left = tree_insert(root->left, node);
	else
		root->right = tree_insert(root->right, node);
	return rebalance(root);
}

static struct range_node *tree_remove_min(struct range_node *root,
					  struct range_node **min)
{
	if (!root->left) {
		*min = root;
		return root->right;
	}
	root->left = tree_remove_min(root->left, min);
	return rebalance(root);
}

/* Unlink the node whose start is key (it must exist); *out receives it. */
static struct range_node *tree_remove(struct range_node *root, uint64_t key,
				      struct range_node **out)
{
	struct range_node *m;

	if (key < root->start) {
		root->left = tree_remove(root->left, key, out);
	} else if (key > root->start) {
		root->right = tree_remove(root->right, key, out);
	} else {
		*out = root;
		if (!root->left)
			return root->right;
		if (!root->right)
			return root->left;
		root->right = tree_remove_min(root->right, &m);
		m->left = root->left;
		m->right = root->right;
		return rebalance(m);
	}
	return rebalance(root);
}

/*
 * Change the range of the node whose start is key (it must exist) to
 * [start, last], where the new start keeps the node's place in key order;
 * refreshes max_span on the path.  Heights do not change.
 */
static void tree_set(struct range_node *n, uint64_t key, uint64_t start,
		     uint64_t last)
{
	if (key < n->start) {
		tree_set(n->left, key, start, last);
	} else if (key > n->start) {
		tree_set(n->right, key, start, last);
	} else {
		n->start = start;
		n->last = last;
	}
	node_update(n);
}

/* Node with the largest start <= key, or NULL. */
static struct range_node *tree_floor(struct range_node *n, uint64_t key)
{
	struct range_node *best = NULL;

	while (n) {
		if (n->start == key)
			return n;
		if (n->start < key) {
			best = n;
			n = n->right;
		} else {
			n = n->left;
		}
	}
	return best;
}

/* Node with the smallest start >= key, or NULL. */
static struct range_node *tree_ceil(struct range_node *n, uint64_t key)
{
	struct range_node *best = NULL;

	while (n) {
		if (n->start == key)
			return n;
		if (n->start > key) {
			best = n;
			n = n->left;
		} else {
			n = n->right;
		}
	}
	return best;
}

static void tree_free(struct range_node *n)
{
	/* Recursion depth is the tree height, at most ~1.44 log2(n). */
	while (n) {
		struct range_node *r = n->right;

		tree_free(n->left);
		free(n);
		n = r;
	}
}

/* ------------------------------------------------------------- nodes */

static struct range_node *node_get(struct address_allocator *a)
{
	struct range_node *n = a->spare;

	if (n) {
		a->spare = n->right;
		a->nspare--;
		return n;
	}
	return malloc(sizeof(*n));
}

static void node_put(struct address_allocator *a, struct range_node *n)
{
	if (!n)
		return;
	if (a->nspare >= SPARE_MAX) {
		free(n);
		return;
	}
	n->right = a->spare;
	a->spare = n;
	a->nspare++;
}

/* ------------------------------------------------------------ search */

/* Lowest A >= s with A % (mask + 1) == 0 and [A, A + span] inside [s, l]. */
static bool fit_low(uint64_t s, uint64_t l, uint64_t span, uint64_t mask,
		    uint64_t *out)
{
	uint64_t a;

	if (l - s < span)
		return false;
	if (__builtin_add_overflow(s, mask, &a))
		return false;
	a &= ~mask;
	if (a > l || l - a < span)
		return false;
	*out = a;
	return true;
}

/* Highest aligned A with [A, A + span] inside [s, l]. */
static bool fit_high(uint64_t s, uint64_t l, uint64_t span, uint64_t mask,
		     uint64_t *out)
{
	uint64_t a;

	if (l - s < span)
		return false;
	a = (l - span) & ~mask;
	if (a < s)
		return false;
	*out = a;
	return true;
}

/*
 * In-order search for the lowest fit, skipping subtrees whose max_span is
 * too small.  With mask == 0 the first long-enough range always fits, so
 * the walk goes down one path without backtracking: O(log n).  Otherwise a
 * subtree is re-entered only after a long-enough range failed alignment.
 */
static struct range_node *search_low(struct range_node *n, uint64_t span,
				     uint64_t mask, uint64_t *out)
{
	struct range_node *r;

	while (n && n->max_span >= span) {
		r = search_low(n->left, span, mask, out);
		if (r)
			return r;
		if (fit_low(n->start, n->last, span, mask, out))
			return n;
		n = n->right;
	}
	return NULL;
}

static struct range_node *search_high(struct range_node *n, uint64_t span,
				      uint64_t mask, uint64_t *out)
{
	struct range_node *r;

	while (n && n->max_span >= span) {
		r = search_high(n->right, span, mask, out);
		if (r)
			return r;
		if (fit_high(n->start, n->last, span, mask, out))
			return n;
		n = n->left;
	}
	return NULL;
}

/* ------------------------------------------------------------ public */

int address_allocator_create(uint64_t base, uint64_t last,
			     struct address_allocator **out)
{
	struct address_allocator *a;
	struct range_node *n;

	if (!out || base > last)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	n = malloc(sizeof(*n));
	if (!a || !n) {
		free(a);
		free(n);
		return -ENOMEM;
	}
	a->base = base;
	a->last = last;
	n->start = base;
	n->last = last;
	a->free_root = tree_insert(NULL, n);
	a->nfree = 1;
	*out = a;
	return 0;
}

void address_allocator_destroy(struct address_allocator *a)
{
	struct range_node *n;

	if (!a)
		return;
	tree_free(a->free_root);
	tree_free(a->alloc_root);
	while ((n = a->spare)) {
		a->spare = n->right;
		free(n);
	}
	free(a);
}

/*
 * Carve [addr, addr + span] out of free node f and record the allocation.
 * A remainder keeps f's place in key order (no other free range lies inside
 * f), so f is updated in place; only a split needs a second node.
 */
static int carve(struct address_allocator *a, struct range_node *f,
		 uint64_t addr, uint64_t span)
{
	struct range_node *an, *rn = NULL, *removed;
	uint64_t fs = f->start, fl = f->last, end = addr + span;
	bool left = addr > fs, right = end < fl;

	an = node_get(a);
	if (!an)
		return -ENOMEM;
	if (left && right) {
		rn = node_get(a);
		if (!rn) {
			node_put(a, an);
			return -ENOMEM;
		}
	}
	/* From here on nothing fails. */
	if (left) {
		tree_set(a->free_root, fs, fs, addr - 1);
		if (right) {
			rn->start = end + 1;
			rn->last = fl;
			a->free_root = tree_insert(a->free_root, rn);
			a->nfree++;
		}
	} else if (right) {
		tree_set(a->free_root, fs, end + 1, fl);
	} else {
		a->free_root = tree_remove(a->free_root, fs, &removed);
		a->nfree--;
		node_put(a, removed);
	}
	an->start = addr;
	an->last = end;
	a->alloc_root = tree_insert(a->alloc_root, an);
	a->nalloc++;
	a->allocated += (u128)span + 1;
	return 0;
}

int address_allocator_allocate(struct address_allocator *a, uint64_t size,
			       uint64_t alignment,
			       enum address_allocator_policy policy,
			       uint64_t *addr)
{
	uint64_t span, mask, at = 0, end;
	struct range_node *f;
	int err;

	if (!a || !addr || size == 0)
		return -EINVAL;
	if (alignment == 0 || (alignment & (alignment - 1)) != 0)
		return -EINVAL;
	span = size - 1;
	mask = alignment - 1;
	switch (policy) {
	case ADDRESS_ALLOC_FIRST_FIT:
		f = search_low(a->free_root, span, mask, &at);
		if (!f)
			return -ENOMEM;
		break;
	case ADDRESS_ALLOC_LAST_FIT:
		f = search_high(a->free_root, span, mask, &at);
		if (!f)
			return -ENOMEM;
		break;
	case ADDRESS_ALLOC_EXACT:
		at = *addr;
		if (at & mask)
			return -EINVAL;
		if (__builtin_add_overflow(at, span, &end))
			return -EOVERFLOW;
		if (at < a->base || end > a->last)
			return -ERANGE;
		f = tree_floor(a->free_root, at);
		if (!f || f->last < end)
			return -EBUSY;
		break;
	default:
		return -EINVAL;
	}
	err = carve(a, f, at, span);
	if (err)
		return err;
	*addr = at;
	return 0;
}

int address_allocator_allocate_at(struct address_allocator *a, uint64_t addr,
				  uint64_t size)
{
	return address_allocator_allocate(a, size, 1, ADDRESS_ALLOC_EXACT,
					  &addr);
}

int address_allocator_free(struct address_allocator *a, uint64_t addr,
			   uint64_t size)
{
	struct range_node *n, *l, *r, *tmp;
	uint64_t end, start, last;

	if (!a)
		return -EINVAL;
	if (size && __builtin_add_overflow(addr, size - 1, &end))
		return -EOVERFLOW;
	if (addr < a->base || addr > a->last)
		return -ERANGE;
	n = tree_floor(a->alloc_root, addr);
	if (!n || n->start != addr)
		return -ENOENT;
	if (size && n->last != end)
		return -EINVAL;

	a->alloc_root = tree_remove(a->alloc_root, addr, &n);
	a->nalloc--;
	a->allocated -= (u128)(n->last - n->start) + 1;
	start = n->start;
	last = n->last;

	/*
	 * Free neighbours: l ends just before, r starts just after.  A merged
	 * range keeps l's key, or r's new start, which no other free range
	 * lies between; so it is updated in place.
	 */
	l = start > a->base ? tree_floor(a->free_root, start - 1) : NULL;
	if (l && l->last != start - 1)
		l = NULL;
	r = last < a->last ? tree_floor(a->free_root, last + 1) : NULL;
	if (r && r->start != last + 1)
		r = NULL;
	if (l && r) {
		last = r->last;
		a->free_root = tree_remove(a->free_root, r->start, &tmp);
		a->nfree--;
		node_put(a, tmp);
		tree_set(a->free_root, l->start, l->start, last);
		node_put(a, n);
	} else if (l) {
		tree_set(a->free_root, l->start, l->start, last);
		node_put(a, n);
	} else if (r) {
		tree_set(a->free_root, r->start, start, r->last);
		node_put(a, n);
	} else {
		a->free_root = tree_insert(a->free_root, n);
		a->nfree++;
	}
	return 0;
}

int address_allocator_find(const struct address_allocator *a, uint64_t addr,
			   uint64_t *start, uint64_t *size)
{
	const struct range_node *n;

	if (!a)
		return -EINVAL;
	n = tree_floor(a->alloc_root, addr);
	if (!n || n->last < addr)
		return -ENOENT;
	if (start)
		*start = n->start;
	if (size)
		*size = n->last - n->start + 1;
	return 0;
}

int address_allocator_next(const struct address_allocator *a, uint64_t from,
			   uint64_t *start, uint64_t *size)
{
	const struct range_node *n;

	if (!a || !start)
		return -EINVAL;
	n = tree_ceil(a->alloc_root, from);
	if (!n)
		return -ENOENT;
	*start = n->start;
	if (size)
		*size = n->last - n->start + 1;
	return 0;
}

int address_allocator_next_free(const struct address_allocator *a,
				uint64_t from, uint64_t *start, uint64_t *last)
{
	const struct range_node *n;

	if (!a || !start)
		return -EINVAL;
	n = tree_ceil(a->free_root, from);
	if (!n)
		return -ENOENT;
	*start = n->start;
	if (last)
		*last = n->last;
	return 0;
}

static int foreach_node(const struct range_node *n,
			int (*fn)(void *, uint64_t, uint64_t), void *opaque)
{
	int ret;

	while (n) {
		ret = foreach_node(n->left, fn, opaque);
		if (ret)
			return ret;
		ret = fn(opaque, n->start, n->last - n->start + 1);
		if (ret)
			return ret;
		n = n->right;
	}
	return 0;
}

int address_allocator_foreach(const struct address_allocator *a,
			      int (*fn)(void *opaque, uint64_t start,
					uint64_t size),
			      void *opaque)
{
	if (!a || !fn)
		return -EINVAL;
	return foreach_node(a->alloc_root, fn, opaque);
}

size_t address_allocator_count(const struct address_allocator *a)
{
	return a ? a->nalloc : 0;
}

static uint64_t saturate(u128 v, bool *is_2_64)
{
	if (is_2_64)
		*is_2_64 = v > UINT64_MAX;
	return v > UINT64_MAX ? UINT64_MAX : (uint64_t)v;
}

uint64_t address_allocator_free_bytes(const struct address_allocator *a,
				      bool *is_2_64)
{
	u128 total;

	if (!a)
		return saturate(0, is_2_64);
	total = (u128)(a->last - a->base) + 1;
	return saturate(total - a->allocated, is_2_64);
}

uint64_t address_allocator_allocated_bytes(const struct address_allocator *a,
					   bool *is_2_64)
{
	return saturate(a ? a->allocated : 0, is_2_64);
}

int address_allocator_range(const struct address_allocator *a, uint64_t *base,
			    uint64_t *last)
{
	if (!a)
		return -EINVAL;
	if (base)
		*base = a->base;
	if (last)
		*last = a->last;
	return 0;
}

/* ------------------------------------------------------ self-check */

struct walk {
	const struct range_node **v;
	size_t n;
	size_t cap;
};

/*
 * Validate the subtree (heights, balance, max_span, in-order keys, ranges
 * well formed) and append its nodes in order.  Returns the height or -1.
 */
static int check_tree(const struct range_node *n, struct walk *w)
{
	int hl, hr;
	uint64_t m;

	if (!n)
		return 0;
	if (n->start > n->last)
		return -1;
	hl = check_tree(n->left, w);
	if (hl < 0)
		return -1;
	if (w->n >= w->cap)
		return -1;
	w->v[w->n++] = n;
	hr = check_tree(n->right, w);
	if (hr < 0)
		return -1;
	if (hl - hr > 1 || hr - hl > 1)
		return -1;
	if (n->height != 1u + (unsigned int)(hl > hr ? hl : hr))
		return -1;
	m = n->last - n->start;
	if (n->left && n->left->max_span > m)
		m = n->left->max_span;
	if (n->right && n->right->max_span > m)
		m = n->right->max_span;
	if (n->max_span != m)
		return -1;
	return (int)n->height;
}

int address_allocator_check(const struct address_allocator *a)
{
	struct walk fw = {0}, aw = {0};
	size_t i = 0, j = 0;
	uint64_t next = 0;
	bool done = false;
	u128 allocated = 0;
	int ret = -EUCLEAN;

	if (!a)
		return -EINVAL;
	fw.cap = a->nfree;
	aw.cap = a->nalloc;
	fw.v = calloc(fw.cap ? fw.cap : 1, sizeof(*fw.v));
	aw.v = calloc(aw.cap ? aw.cap : 1, sizeof(*aw.v));
	if (!fw.v || !aw.v) {
		ret = -ENOMEM;
		goto out;
	}
	if (check_tree(a->free_root, &fw) < 0 || fw.n != a->nfree)
		goto out;
	if (check_tree(a->alloc_root, &aw) < 0 || aw.n != a->nalloc)
		goto out;
	/* Merge both ordered lists: they must tile [base, last] exactly, and
	 * no two free ranges may touch. */
	next = a->base;
	while (i < fw.n || j < aw.n) {
		const struct range_node *n;
		bool is_free;

		if (done)
			goto out;
		if (j >= aw.n ||
		    (i < fw.n && fw.v[i]->start < aw.v[j]->start)) {
			n = fw.v[i++];
			is_free = true;
		} else {
			n = aw.v[j++];
			is_free = false;
		}
		if (n->start != next || n->last > a->last)
			goto out;
		if (is_free && i >= 2 && fw.v[i - 2]->last + 1 == n->start)
			goto out;
		if (!is_free)
			allocated += (u128)(n->last - n->start) + 1;
		if (n->last == a->last)
			done = true;
		else
			next = n->last + 1;
	}
	if (!done || allocated != a->allocated)
		goto out;
	ret = 0;
out:
	free(fw.v);
	free(aw.v);
	return ret;
}
