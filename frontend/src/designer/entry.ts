/** The Designer page's entry point (designer.html). */

import { start } from "./main";

start()
  .then((state) => Object.assign(window, { designer: { state } }))
  .catch((error: Error) => {
    const box = document.querySelector("#message") as HTMLElement;
    box.textContent = error.message;
    box.hidden = false;
    box.classList.add("error");
  });
