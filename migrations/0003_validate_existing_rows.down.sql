-- Reverts 0003: nothing to undo. A validated constraint stays valid, and 0002's down
-- migration drops these constraints anyway.
SELECT 1;
