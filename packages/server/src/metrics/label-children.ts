// prom-client hashes a label set on every inc()/observe() with labels; a hot path that keeps the
// child per label set pays a map lookup instead. Bounded: past `max` label sets, children are made
// afresh (as prom-client would hash them) and not kept.

/** `child(key, labels)`: the metric's child for a label set named by `key`, made once by `make`. */
export function labelChildren<L, C>(make: (labels: L) => C, max = 10_000): (key: string, labels: () => L) => C {
  const children = new Map<string, C>();
  return (key, labels) => {
    let c = children.get(key);
    if (c === undefined) {
      c = make(labels());
      if (children.size < max) children.set(key, c);
    }
    return c;
  };
}
