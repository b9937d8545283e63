// Wall clocks across the twinning: each agency's local time in the room header and each
// person's in the people list, with whether offices are open there. The server renders them
// (liaison/clocks.py); this keeps them current, once a minute, with the same rule:
// office hours are from `opens` to `closes` o'clock local time, Monday to Friday.
import { validZone } from "./format.js";
import { strings } from "./strings.js";

const WEEKDAYS = { Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6, Sun: 7 };
const formats = new Map();

function formatFor(zone) {
  if (!formats.has(zone)) {
    formats.set(
      zone,
      new Intl.DateTimeFormat("en-GB", {
        timeZone: zone,
        weekday: "short",
        hour: "2-digit",
        minute: "2-digit",
        hourCycle: "h23",
      }),
    );
  }
  return formats.get(zone);
}

// The wall clock in `zone` at `date`: {text: "08:34", hour, minute, weekday (1 = Monday)}.
export function wallClock(date, zone) {
  const parts = {};
  for (const part of formatFor(validZone(zone) || "UTC").formatToParts(date)) {
    parts[part.type] = part.value;
  }
  const hour = Number(parts.hour) % 24;
  const minute = Number(parts.minute);
  return {
    text: `${String(hour).padStart(2, "0")}:${parts.minute}`,
    hour,
    minute,
    weekday: WEEKDAYS[parts.weekday] || 0,
  };
}

export function isOfficeHours(date, zone, { opens = 8, closes = 18 } = {}) {
  const clock = wallClock(date, zone);
  return clock.weekday >= 1 && clock.weekday <= 5 && clock.hour >= opens && clock.hour < closes;
}

// Every element with data-clock-zone: its .clock-time child (or itself) shows the time there,
// its .clock-hours child whether offices are open.
export class WallClocks {
  constructor({ root, hours, now = () => new Date() }) {
    this.root = root;
    this.hours = hours;
    this.now = now;
    this.timer = null;
  }

  start() {
    this.tick();
    // On the minute, then every minute.
    const wait = 60000 - (this.now().getTime() % 60000);
    this.timer = setTimeout(() => {
      this.tick();
      this.timer = setInterval(() => this.tick(), 60000);
    }, wait);
  }

  tick() {
    const date = this.now();
    this.root.querySelectorAll("[data-clock-zone]").forEach((node) => {
      const zone = node.dataset.clockZone;
      const time = node.querySelector(".clock-time") || node;
      time.textContent = wallClock(date, zone).text;
      const tag = node.querySelector(".clock-hours");
      if (tag) {
        const open = isOfficeHours(date, zone, this.hours);
        tag.classList.toggle("is-open", open);
        tag.textContent = open ? strings.officeHours : strings.outOfHours;
      }
    });
  }
}
