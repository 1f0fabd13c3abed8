import type { z } from "zod";
import type { PathSeg } from "./yaml-position.js";

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  discriminator?: string;
}
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** Strip wrappers (optional, default, pipe...) down to the schema that decides the shape. */
function unwrap(s: z.ZodType): z.ZodType {
  for (;;) {
    const d = defOf(s);
    if (d.innerType) s = d.innerType;
    else if (d.type === "pipe" && d.in) s = d.in;
    else return s;
  }
}

/** Pick the union member that fits `data` (by discriminator value, else the first object member). */
function pickMember(
  options: z.ZodType[],
  discriminator: string | undefined,
  data: unknown,
): z.ZodType | undefined {
  const objects = options.map(unwrap).filter((o) => defOf(o).type === "object");
  if (discriminator && data && typeof data === "object") {
    const want = (data as Record<string, unknown>)[discriminator];
    const hit = objects.find((o) => {
      const lit = defOf(o).shape?.[discriminator];
      const values = lit ? (defOf(unwrap(lit)) as unknown as { values?: unknown[] }).values : undefined;
      return values?.includes(want);
    });
    if (hit) return hit;
  }
  return objects[0];
}

/**
 * The keys the schema allows at a data path, for "did you mean" on unknown keys. Walks the
 * schema alongside the data so a union (kernel.sources by `kind`) offers the right member's keys.
 */
export function allowedKeysAt(schema: z.ZodType, path: readonly PathSeg[], data: unknown): string[] {
  let s: z.ZodType | undefined = unwrap(schema);
  let d = data;
  for (const seg of [...path, undefined]) {
    if (!s) return [];
    let def = defOf(s);
    if (def.type === "union" && def.options) {
      s = pickMember(def.options, def.discriminator, d);
      if (!s) return [];
      def = defOf(s);
    }
    if (seg === undefined) return def.type === "object" ? Object.keys(def.shape ?? {}) : [];
    if (def.type === "object") s = def.shape?.[String(seg)];
    else if (def.type === "array") s = def.element;
    else return [];
    s = s ? unwrap(s) : undefined;
    d = d && typeof d === "object" ? (d as Record<string, unknown>)[String(seg)] : undefined;
  }
  return [];
}
