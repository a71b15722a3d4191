// Waiting work served round-robin across its requests, not first come first served: a
// request of many images (or a flood of them) then delays a one-image request by at most a
// turn of each other request, instead of by every image queued before it.
export class FairQueue<T> {
  // Map iteration follows insertion order: a group served goes back to the end.
  private readonly groups = new Map<unknown, T[]>();
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(group: unknown, item: T): void {
    const items = this.groups.get(group);
    if (items) items.push(item);
    else this.groups.set(group, [item]);
    this.count++;
  }

  /** The next item: the first of the group whose turn it is. */
  shift(): T | undefined {
    const next = this.groups.entries().next();
    if (next.done) return undefined;
    const [group, items] = next.value;
    const item = items.shift();
    this.groups.delete(group);
    if (items.length > 0) this.groups.set(group, items);
    this.count--;
    return item;
  }
}
