/** Durations as people write them: `90s`, `30m`, `1h`, `1d`, `10d`, `2w`. Seconds are the unit everywhere else. */
const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 } as const
const DURATION_RE = /^(\d{1,6})([smhdw])$/

/** Seconds in a duration like `30d`; undefined when it is not one (or is zero). */
export function parseDuration(text: string): number | undefined {
  const m = DURATION_RE.exec(text.trim())
  if (!m) return undefined
  const seconds = Number(m[1]) * UNIT_SECONDS[m[2] as keyof typeof UNIT_SECONDS]
  return seconds > 0 ? seconds : undefined
}
