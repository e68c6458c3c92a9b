/** DOM helpers shared by the Explorer's panels: lookup, select options, change listeners, the message line. */

export const $ = <T extends HTMLElement>(selector: string) => document.querySelector(selector) as T;

/** Replace the options of `select` and choose `value`. */
export function options(select: HTMLSelectElement, items: { value: string; text: string }[], value: string): void {
  select.replaceChildren(
    ...items.map(({ value: v, text }) => {
      const option = document.createElement("option");
      option.value = v;
      option.textContent = text;
      return option;
    }),
  );
  select.value = value;
}

/** Call `listener` with the new value of the `<select>` at `selector` when it changes. */
export function onChange(selector: string, listener: (value: string) => void): void {
  const select = $<HTMLSelectElement>(selector);
  select.addEventListener("change", () => listener(select.value));
}

/** Show `text` in the message line (an error in red); empty text hides it. */
export function showMessage(text: string, error: boolean): void {
  const box = $("#message");
  box.textContent = text;
  box.hidden = !text;
  box.classList.toggle("error", error);
}
