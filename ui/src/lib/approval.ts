// How the dashboard says when the approval was checked and will be checked next.

/** "14:05" today, "Dec 3, 14:05" another day, "never" for no time. */
export function checkTime(unixSecs: number | null, now: Date = new Date()): string {
  if (unixSecs === null) return "never";
  const at = new Date(unixSecs * 1000);
  const time = at.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  const sameDay = at.toDateString() === now.toDateString();
  return sameDay ? time : `${at.toLocaleDateString(undefined, { month: "short", day: "numeric" })}, ${time}`;
}

/** The next check: as `checkTime`, but "in a moment" once it is due (the watch wakes within a minute). */
export function nextCheckTime(unixSecs: number | null, now: Date = new Date()): string {
  if (unixSecs !== null && unixSecs * 1000 <= now.getTime()) return "in a moment";
  return checkTime(unixSecs, now);
}

/** `YYYY-MM-DD` (UTC) of a Unix time, the format of the other dates the backend gives. */
export function isoDay(unixSecs: number): string {
  return new Date(unixSecs * 1000).toISOString().slice(0, 10);
}
