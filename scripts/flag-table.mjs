#!/usr/bin/env node
// Prints README.md's engine flag table from ENGINE_FLAGS (src/runtime/options.ts; run `npm run build` first).
import { engineFlagsTable } from "../dist/runtime/options.js";

process.stdout.write(engineFlagsTable());
