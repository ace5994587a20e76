/**
 * Records the size of every Buffer.alloc / allocUnsafe / allocUnsafeSlow while it is on (calls go
 * through), so a test can prove nothing proportional to a size a peer announced was allocated.
 */
export function recordAllocations(): { sizes: number[]; stop: () => void } {
  const sizes: number[] = [];
  const spies = (['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const).map((fn) => {
    const real = Buffer[fn].bind(Buffer) as (size: number, ...rest: unknown[]) => Buffer;
    return jest.spyOn(Buffer, fn).mockImplementation(((size: number, ...rest: unknown[]) => {
      sizes.push(size);
      return real(size, ...rest);
    }) as never);
  });
  return { sizes, stop: () => spies.forEach((s) => s.mockRestore()) };
}
