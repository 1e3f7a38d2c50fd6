// One gate for every image decode in the process: at most `maxConcurrent` decodes at once, and at
// most `maxPixels` decoded pixels in flight (an image's pixel count is known from its header before
// it is decoded). Twelve concurrent 16-megapixel PNGs of 46 kB each took RSS from 580 MB to 1.6 GB
// and stalled /healthz; behind the gate they decode a few at a time. Process-wide on purpose: the
// memory and libuv's thread pool are process-wide, whichever route or job the images came from.

export interface DecodeGateLimits {
  maxConcurrent: number;
  maxPixels: number;
}

export class DecodeGate {
  #active = 0;
  #pixels = 0;
  #peakPixels = 0;
  readonly #waiting: Array<{ pixels: number; go: () => void }> = [];

  constructor(private limits: DecodeGateLimits) {}

  configure(limits: DecodeGateLimits): void {
    this.limits = limits;
    this.#pump();
  }

  /** Decodes in flight, their pixels, and the most pixels ever in flight at once. */
  stats(): { active: number; pixels: number; peakPixels: number; waiting: number } {
    return { active: this.#active, pixels: this.#pixels, peakPixels: this.#peakPixels, waiting: this.#waiting.length };
  }

  /**
   * Runs `fn` once the gate has room for `pixels` (an image larger than the whole budget runs alone).
   * First come, first served: a large image is not starved by small ones behind it.
   */
  async run<T>(pixels: number, fn: () => Promise<T>): Promise<T> {
    await new Promise<void>((go) => {
      this.#waiting.push({ pixels, go });
      this.#pump();
    });
    try {
      return await fn();
    } finally {
      this.#active--;
      this.#pixels -= pixels;
      this.#pump();
    }
  }

  #pump(): void {
    while (this.#waiting.length) {
      const next = this.#waiting[0]!;
      const fits =
        this.#active === 0 ||
        (this.#active < this.limits.maxConcurrent && this.#pixels + next.pixels <= this.limits.maxPixels);
      if (!fits) return;
      this.#waiting.shift();
      this.#active++;
      this.#pixels += next.pixels;
      this.#peakPixels = Math.max(this.#peakPixels, this.#pixels);
      next.go();
    }
  }
}

/** The process's gate; the model service sets its limits from the config (limits.imageDecodes). */
export const decodeGate = new DecodeGate({ maxConcurrent: 2, maxPixels: 48_000_000 });
