/** Marks objects made by the wrappers, so that build() can tell them from plain functions. */
export const KIND = Symbol.for("wallaroo.kind");
