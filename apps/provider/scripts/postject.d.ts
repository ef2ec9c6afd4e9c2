/** postject ships no types; this is the one function the provider build uses (dist/api.js). */
declare module 'postject' {
  export interface InjectOptions {
    /** Mach-O only: the segment the resource goes in (`NODE_SEA` for Node's single executables). */
    readonly machoSegmentName?: string
    readonly overwrite?: boolean
    /** The fuse string whose `:0` postject flips to `:1` once the resource is in. */
    readonly sentinelFuse?: string
  }
  /** Adds `resourceData` to the executable at `filename` (ELF, PE or Mach-O), in place. */
  export function inject(filename: string, resourceName: string, resourceData: Buffer, options?: InjectOptions): Promise<void>
}
