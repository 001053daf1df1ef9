import { LeaseTable } from "../src/lease/table.ts";
import type { Lease } from "../src/lease/types.ts";

/** A LeaseTable that tells its observers about every record that changed it. */
export class ObservedTable extends LeaseTable {
  readonly observers: ((l: Lease) => void)[] = [];

  override merge(l: Lease): boolean {
    if (!super.merge(l)) return false;
    for (const fn of this.observers) fn(l);
    return true;
  }
}
