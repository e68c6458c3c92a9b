import { describe, expect, it } from "vitest";
import type { ConfigJson } from "./segments";
import { decodeConfig, decodeView, encodeConfig, encodeView, type ViewState } from "./urlstate";

describe("URL state", () => {
  it("round-trips a view with a whole configuration", () => {
    const view: ViewState = {
      designer: 2,
      saved: null,
      config: { name: "ab test", segments: [{ start: 0, stop: 1, rule: "zbox", params: { low: 0, high: 1 } }, { start: 1, stop: null, rule: "unified", params: { alpha: 2, beta: 1, include_bias: true } }] },
      input: { upload: "0123456789abcdef01234567" },
      target: "contrastive",
      index: 4,
      tab: "compare",
      segment: 1,
    };
    expect(decodeView("#" + encodeView(view))).toEqual(view);
  });
  it("round-trips a saved name and a sample, and defaults what is broken", () => {
    const fragment = encodeView({ designer: 0, saved: "mine", config: null, input: { sample: 5 }, target: "class", index: 2, tab: "design", segment: 0 });
    expect(fragment).toBe("d=0&c=mine&s=5&t=class&k=2");
    const back = decodeView(fragment);
    expect([back.saved, back.input, back.target, back.index]).toEqual(["mine", { sample: 5 }, "class", 2]);
    const broken = decodeView("d=x&u=%%%&s=-1&t=evil&up=nothex");
    expect([broken.designer, broken.config, broken.input, broken.target]).toEqual([0, null, { sample: 0 }, "predicted"]);
  });
  it("codes configurations compactly", () => {
    const config: ConfigJson = { name: "é", segments: [{ start: 0, stop: 3, rule: "gamma", params: {} }, { start: 3, stop: null, rule: "epsilon", params: { eps: 0.25 } }] };
    expect(decodeConfig(encodeConfig(config))).toEqual(config);
    expect(encodeConfig(config)).toMatch(/^[A-Za-z0-9_-]+$/);
  });
});
