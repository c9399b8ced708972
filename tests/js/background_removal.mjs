// Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
//
// Runs transformers.js's background-removal pipeline on a folder laid out by `birefnet-hf publish --onnx`,
// fully offline (local files only), and writes the alpha channel of the cut-out it returns as raw 8-bit values.
//
//   node background_removal.mjs MODELS_ROOT MODEL_NAME IMAGE.png OUT.json [fp32|fp16]
//
// OUT.json: {"width": W, "height": H, "alpha": [...] (row-major)}. Used by tests/test_transformers_js.py.
import { writeFileSync } from "node:fs";
import { env, pipeline, RawImage } from "@huggingface/transformers";

const [modelsRoot, modelName, imagePath, outputPath, dtype = "fp32"] = process.argv.slice(2);
if (!outputPath) {
  console.error("usage: node background_removal.mjs MODELS_ROOT MODEL_NAME IMAGE.png OUT.json [fp32|fp16]");
  process.exit(2);
}
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = modelsRoot;

const remover = await pipeline("background-removal", modelName, { dtype, device: "cpu" });
const image = await RawImage.read(imagePath);
const output = await remover(image);
const cutout = Array.isArray(output) ? output[0] : output; // one image in, one RawImage out
if (cutout.channels !== 4) {
  console.error(`expected an RGBA cut-out, got ${cutout.channels} channels`);
  process.exit(1);
}
const alpha = Array.from({ length: cutout.width * cutout.height }, (_, i) => cutout.data[4 * i + 3]);
writeFileSync(outputPath, JSON.stringify({ width: cutout.width, height: cutout.height, alpha }));
