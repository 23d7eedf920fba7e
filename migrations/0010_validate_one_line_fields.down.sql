-- Reverts 0010: nothing to undo. A validated constraint stays valid, and 0009's down
-- migration drops these constraints anyway.
SELECT 1;
