/**
 * An object's one alarm, with its time remembered in memory. Hot paths only ever need
 * "fire no later than t", which is then a comparison instead of an await on getAlarm().
 * A fresh instance reads storage once; the memory is forgotten when the alarm fires.
 * Every alarm change of an object goes through its clock, or the memory would drift.
 */
export class AlarmClock {
  /** undefined: not read yet; null: no alarm set. */
  #at: number | null | undefined = undefined;

  constructor(private readonly storage: DurableObjectStorage) {}

  /** Called first thing in alarm(): the runtime removed the alarm that fired. */
  fired(): void {
    this.#at = null;
  }

  async get(): Promise<number | null> {
    if (this.#at === undefined) this.#at = await this.storage.getAlarm();
    return this.#at;
  }

  /** Makes sure the alarm fires at `t` or earlier (one that is due already will run). */
  async atLatest(t: number): Promise<void> {
    const current = this.#at === undefined ? await this.get() : this.#at;
    if (current !== null && current <= t) return;
    await this.set(t);
  }

  async set(t: number): Promise<void> {
    this.#at = t;
    await this.storage.setAlarm(t);
  }

  async clear(): Promise<void> {
    if (this.#at === null) return;
    this.#at = null;
    await this.storage.deleteAlarm();
  }

  /** After storage.deleteAll(), which removes the alarm too. */
  forget(): void {
    this.#at = null;
  }
}
