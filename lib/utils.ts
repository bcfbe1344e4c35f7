/** A class name, or a falsy value for a class that does not apply. */
export type ClassValue = string | false | null | undefined;

/**
 * Joins the class names that apply. Deliberately tiny: it does not merge conflicting Tailwind
 * utilities (no tailwind-merge), so primitives put overridable classes first and let the
 * caller's `className` come last, and callers avoid passing a class that fights a variant.
 */
export function cn(...classes: ClassValue[]): string {
  return classes.filter(Boolean).join(' ');
}
