#!/usr/bin/env node
// Prints the engine flag table of docs/operations.md from ENGINE_FLAGS (src/runtime/options.ts; run `npm run build` first).
import { engineFlagsTable } from "../dist/runtime/options.js";

process.stdout.write(engineFlagsTable());
